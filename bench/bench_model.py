"""Training step of model/'s ST-GCN vs a baseline, same weights, same process.

    python -m bench.bench_model [--batch 16] [--frames 150] [--classes 30] [--width 1.0] [--repeats 5] [--runs 1]
                                [--threads N] [--against original|factored] [--profile]
    python -m bench.bench_model --cpu-profile --repeats 30 --runs 5     # the CPU profile's step, 1 thread
    python -m bench.bench_model --layers [--width 0.125 --frames 40 --batch 8 --threads 1]

Baselines: ``original``, the straightforward original-style network (bench/original_stgcn.py); ``factored``, this
network as it was before the graph convolution chose its contraction by shape (the 1x1 convolution and the bmm
aggregation in every block) with torch's per-parameter SGD loop, i.e. the step the trainer ran until then.
``--cpu-profile``: the main job's shape (batch 8, 40 frames, width x0.125, one thread as a trial has) against
``factored``. Our step uses the fused optimizer the trainer uses. Prints the median step time of each (forward +
backward + SGD nesterov step), their ratio, and the largest output difference. Repeats alternate between the two
so machine noise hits both alike. ``--runs N`` repeats the whole comparison in N fresh processes and prints the
median of their ratios: from one process to the next the step time varies more than within one. Also the FLOPs
per clip (torch's FlopCounterMode) and the GFLOP/s each achieves against a large fp32 GEMM timed in the same
process (the faster of MKL's matmul and oneDNN's 1x1 convolution; the FLOPs are the baseline's arithmetic, the
dense contraction does more of it, faster): the convolutions alone at that rate bound what any implementation of
the same arithmetic can do. Then the step's ceiling: the share of its time its convolutions and graph products take
(torch.profiler), and so the share of the bound it would reach with every other operator free.
``--profile`` adds where each implementation's step goes (torch.profiler, self CPU time by kind of operator).
``--layers`` times instead each graph convolution of the network at its own input shape, the dense form against the
factored one (forward + backward, alternating), and which one the network picks on this CPU: the figures that set
``model.stgcn.DENSE_MAX_CHANNEL_PRODUCT``; and each temporal convolution against the same products as matmuls and
the square GEMM (bench_model_layers.json at the paper's shape): why the convolutions stay below the bound's rate.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from bench import results
from bench.original_stgcn import OriginalSTGCN
from model import STGCN, ModelConfig
from model.graph import LAYOUTS, adjacency_partitions
from model.stgcn import DENSE_MAX_CHANNEL_PRODUCT, PAPER_STRIDES, GraphConv


def make_optimizer(model, fused: bool) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True, **({"fused": True} if fused else {}))


def step_time(model, x, y, optimizer: torch.optim.Optimizer | None = None) -> float:
    optimizer = optimizer or make_optimizer(model, fused=False)
    start = time.perf_counter()
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


BOUND_SHARE_TARGET = 0.80  # the step's time over the bound's: the share of what this machine allows that it reaches


def step_flops(model, x, y) -> dict[str, float]:
    """FLOPs of one forward + backward by operator (the SGD update is elementwise, not counted)."""
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return {str(op): float(count) for op, count in counter.get_flop_counts()["Global"].items()}


def peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """The machine's practical fp32 peak: the faster of a size x size matmul (torch's BLAS, MKL) and the same GEMM
    as a 1x1 convolution (oneDNN, which the network's convolutions run on). On an AMD CPU with AVX-512 MKL's
    sgemm can stay well below oneDNN's kernels, and a bound from it alone is then no bound."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    image = a.t().reshape(1, size, size, 1)  # (1, C=size, H=size, W=1): the convolution multiplies the same matrices
    kernel = b.t().reshape(size, size, 1, 1)
    best = 0.0
    for product in (lambda: a @ b, lambda: F.conv2d(image, kernel)):
        product()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            product()
            times.append(time.perf_counter() - start)
        best = max(best, 2 * size**3 / statistics.median(times) / 1e9)
    return best


# Operator name fragments -> the kind of work the profile table reports them under (first match wins).
OPERATOR_KINDS = (("convolution", "convolutions"), ("bmm", "aggregation (bmm/mm)"), ("aten::mm", "aggregation (bmm/mm)"),
                  ("addmm", "aggregation (bmm/mm)"), ("fused_sgd", "optimizer"), ("foreach", "optimizer"),
                  ("batch_norm", "batch norm"), ("copy_", "copies"), ("clone", "copies"), ("threshold", "ReLU"),
                  ("relu", "ReLU"), ("clamp", "ReLU"))


def step_profile(model, x, y, optimizer) -> dict[str, float]:
    """Share of one step's self CPU time by kind of operator; whatever matches no kind is 'other'."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step_time(model, x, y, optimizer)
    shares: dict[str, float] = {}
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in events)
    for event in events:
        kind = next((k for fragment, k in OPERATOR_KINDS if fragment in event.key), "other")
        shares[kind] = shares.get(kind, 0.0) + event.self_cpu_time_total / total
    return shares


CONTRACTIONS = ("convolutions", "aggregation (bmm/mm)")


def contraction_ceiling(shares: dict[str, float], step_s: float, bound_s: float) -> tuple[float, float]:
    """The share of the step its contractions (convolutions, graph products) take, and the share of the bound the
    step would reach if every other operator took no time: the most any change around those kernels can give."""
    contractions = sum(shares.get(kind, 0.0) for kind in CONTRACTIONS)
    return contractions, bound_s / (step_s * contractions)


def baseline_network(ours: STGCN, against: str) -> torch.nn.Module:
    if against == "original":
        return OriginalSTGCN(num_class=ours.config.num_classes, channels=ours.config.channels())
    factored = STGCN(ours.config)
    for layer in factored.modules():
        if isinstance(layer, GraphConv):
            layer.dense = False
    return factored.to(memory_format=torch.channels_last)


def build(args):
    """Both networks with the same weights, each with its optimizer, the input batch, and the largest eval output
    difference."""
    torch.manual_seed(0)
    ours = STGCN(ModelConfig(num_classes=args.classes, width=args.width))
    baseline = baseline_network(ours, args.against)
    baseline.load_state_dict(ours.state_dict())
    x = torch.randn(args.batch, 3, args.frames, 18, 2)
    y = torch.randint(0, args.classes, (args.batch,))
    with torch.no_grad():
        difference = (ours.eval()(x) - baseline.eval()(x)).abs().max().item()
    ours = ours.to(memory_format=torch.channels_last).train()  # as the trainer runs it
    baseline = baseline.train()
    return ours, baseline, make_optimizer(ours, True), make_optimizer(baseline, False), x, y, difference


def compare(args) -> dict[str, float]:
    """Median step time of each implementation and the machine's GEMM rate (``peak``, GFLOP/s), the three measured
    in turn in each repeat after warm-up steps, so that a busy moment of the machine hits all three alike: a rate
    measured apart from the steps bounds them on another machine state."""
    torch.set_num_threads(args.threads)
    ours, baseline, ours_opt, baseline_opt, x, y, _ = build(args)
    for _ in range(3):  # warm-up: allocator, oneDNN primitive caches
        step_time(ours, x, y, ours_opt)
        step_time(baseline, x, y, baseline_opt)
    peak_gflops(repeats=1)
    times = {"ours": [], args.against: [], "peak": []}
    for _ in range(args.repeats):
        times["ours"].append(step_time(ours, x, y, ours_opt))
        times[args.against].append(step_time(baseline, x, y, baseline_opt))
        times["peak"].append(peak_gflops(repeats=1))
    return {k: statistics.median(v) for k, v in times.items()}


def layer_shapes(args) -> list[tuple[int, int, int]]:
    """(input channels, output channels, frames) of each block's graph convolution: a block's stride shortens
    time in its temporal convolution, after the graph convolution."""
    channels = ModelConfig(width=args.width).channels()
    shapes, previous, frames = [], 3, args.frames
    for out, stride in zip(channels, PAPER_STRIDES):
        shapes.append((previous, out, frames))
        previous, frames = out, (frames - 1) // stride + 1
    return list(dict.fromkeys(shapes))


def temporal_shapes(args) -> list[tuple[int, int, int]]:
    """(channels, input frames, stride) of each block's temporal convolution, distinct ones only."""
    channels = ModelConfig(width=args.width).channels()
    shapes, frames = [], args.frames
    for out, stride in zip(channels, PAPER_STRIDES):
        shapes.append((out, frames, stride))
        frames = (frames - 1) // stride + 1
    return list(dict.fromkeys(shapes))


def _seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def temporal_rate(channels: int, frames: int, stride: int, clips: int, repeats: int, kernel: int = 9) -> dict:
    """One temporal convolution (forward + both gradients, oneDNN as the network runs it) against the same three
    products as matrix multiplications of its im2col shapes (torch.mm: MKL), and the square GEMM the bound takes,
    measured in turn: whether a GEMM-based implementation could run it nearer that rate. GFLOP/s, medians."""
    x = torch.randn(clips, channels, frames, 18).contiguous(memory_format=torch.channels_last).requires_grad_()
    weight = torch.randn(channels, channels, kernel, 1, requires_grad=True)
    m, k = clips * ((frames - 1) // stride + 1) * 18, channels * kernel  # im2col: (M x K) @ (K x channels)
    columns, filters, grad = torch.randn(m, k), torch.randn(k, channels), torch.randn(m, channels)

    def convolution():
        y = F.conv2d(x, weight, stride=(stride, 1), padding=((kernel - 1) // 2, 0))
        y.backward(torch.ones_like(y))

    def products():
        columns @ filters, grad @ filters.t(), columns.t() @ grad

    flops = 3 * 2 * m * k * channels
    convolution(), products()  # warm-up: oneDNN's primitive cache, the allocator
    rates = {"convolution": [], "matmuls": [], "square_gemm": []}
    for _ in range(repeats):
        rates["convolution"].append(flops / _seconds(convolution) / 1e9)
        rates["matmuls"].append(flops / _seconds(products) / 1e9)
        rates["square_gemm"].append(peak_gflops(repeats=1))
    return {"channels": channels, "frames": frames, "stride": stride,
            **{name: round(statistics.median(values), 1) for name, values in rates.items()}}


def temporal_rates(args) -> list[dict]:
    """temporal_rate for each distinct temporal convolution of the network, printed as it goes."""
    rows = []
    for channels, frames, stride in temporal_shapes(args):
        row = temporal_rate(channels, frames, stride, 2 * args.batch, max(args.repeats, 3))
        print(f"{channels:>4} ch T={frames:<4} stride {stride}: convolution {row['convolution']:5.0f} GFLOP/s, the same "
              f"products as matmuls {row['matmuls']:5.0f} GFLOP/s, square GEMM {row['square_gemm']:5.0f} GFLOP/s "
              f"(convolution at {100 * row['convolution'] / row['square_gemm']:.0f}% of it)", flush=True)
        rows.append(row)
    return rows


def layer_times(args) -> None:
    """Dense against factored graph convolution per distinct layer shape, with (N·M) = 2·batch rows of clips."""
    adjacency = torch.from_numpy(adjacency_partitions(LAYOUTS["openpose"], "spatial", 1)).float()
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}: the network takes the dense form up to "
          f"{DENSE_MAX_CHANNEL_PRODUCT} (input x output) channels")
    for c_in, c_out, frames in layer_shapes(args):
        layer = GraphConv(c_in, c_out, adjacency.shape[0])
        picked = "dense" if layer.dense else "factored"
        x = torch.randn(2 * args.batch, c_in, frames, 18).contiguous(memory_format=torch.channels_last)
        x.requires_grad_()
        times = {"dense": [], "factored": []}
        for i in range(3 + max(args.repeats, 20)):
            for form in times:
                layer.dense = form == "dense"
                start = time.perf_counter()
                layer(x, adjacency).sum().backward()
                if i >= 3:
                    times[form].append(time.perf_counter() - start)
        dense, factored = (statistics.median(times[form]) for form in ("dense", "factored"))
        print(f"{c_in:>4} -> {c_out:<4} T={frames:<4} dense {1000 * dense:7.3f} ms, factored {1000 * factored:7.3f} ms, "
              f"dense {factored / dense:5.2f}x; picked: {picked}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--classes", type=int, default=30)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1, help="fresh processes, each a whole comparison")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--against", choices=("original", "factored"), default="original")
    parser.add_argument("--cpu-profile", action="store_true",
                        help="the CPU profile's step (batch 8, 40 frames, width x0.125, 1 thread) against 'factored'")
    parser.add_argument("--profile", action="store_true", help="also print where each step's time goes")
    parser.add_argument("--layers", action="store_true",
                        help="time each graph convolution, dense against factored, instead of the whole step")
    results.add_out_argument(parser, "bench_model")
    args = parser.parse_args()
    if args.cpu_profile:
        args.batch, args.frames, args.width, args.threads, args.against = 8, 40, 0.125, 1, "factored"
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()} ({platform.processor() or 'unknown cpu'}), {os.cpu_count()} cores, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    print(f"shape: batch {args.batch}, T={args.frames}, M=2, {args.classes} classes, width x{args.width:g}, fp32")
    shape = "cpu_profile" if args.cpu_profile else "paper" if args.width == 1.0 and args.frames == 150 else "custom"
    if args.layers:
        layer_times(args)
        print("temporal convolutions (forward + both gradients), each against its own products as matmuls and the "
              "square GEMM:")
        rows = temporal_rates(args)
        if shape == "paper":
            path = results.write("bench_model_layers", {"shape": {"batch": args.batch, "frames": args.frames,
                                                                  "threads": args.threads}, "temporal": rows},
                                 f"python -m bench.bench_model --layers --repeats {args.repeats}", args.out)
            print(f"written to {path}")
        return
    print(f"baseline: {args.against}")
    if args.runs == 1:
        runs = [compare(args)]
    else:
        with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
            runs = [pool.apply(compare, (args,)) for _ in range(args.runs)]
    base = args.against
    ratios = [run[base] / run["ours"] for run in runs]
    for i, run in enumerate(runs):
        label = f"run {i + 1}: " if len(runs) > 1 else ""
        print(f"{label}{base} {1000 * run[base]:7.1f} ms/step, ours {1000 * run['ours']:7.1f} ms/step "
              f"(medians over {args.repeats}): {ratios[i]:.2f}x")
    med = {name: statistics.median(run[name] for run in runs) for name in (base, "ours")}
    for name in (base, "ours"):
        print(f"{name:>9}: median {1000 * med[name]:8.1f} ms/step, {args.batch / med[name]:7.1f} clips/s")
    print(f"speed-up ours/{base}: {statistics.median(ratios):.2f}x" +
          (f" (median of {len(runs)} runs, {min(ratios):.2f}-{max(ratios):.2f}x)" if len(runs) > 1 else ""))
    ours, baseline, ours_opt, baseline_opt, x, y, difference = build(args)
    print(f"max |output difference| (eval): {difference:.2e}")
    flops = step_flops(baseline, x, y)  # the network's arithmetic, as the two-step contraction does it
    total, convolution = sum(flops.values()), sum(v for k, v in flops.items() if "convolution" in k)
    peak = statistics.median(run["peak"] for run in runs)
    print(f"FLOPs per clip (forward + backward): {total / args.batch / 1e9:.2f} G, of which convolutions "
          f"{convolution / args.batch / 1e9:.2f} G; fp32 GEMM, measured between the steps: {peak:.0f} GFLOP/s")
    for name in (base, "ours"):
        rate = total / med[name] / 1e9
        print(f"{name:>9}: {rate:5.0f} GFLOP/s ({100 * rate / peak:.0f}% of the GEMM)")
    bound = convolution / (peak * 1e9)
    share = bound / med["ours"]
    print(f"convolutions alone at the GEMM rate: {1000 * bound:.0f} ms/step, i.e. at most "
          f"{med[base] / bound:.2f}x over {base} for any implementation of the same arithmetic")
    target = f" (target >= {100 * BOUND_SHARE_TARGET:.0f}%)" if shape == "paper" else ""
    print(f"ours runs at {100 * share:.0f}% of that bound{target}")
    for _ in range(2):  # warm-up, as before the timed steps
        step_time(ours, x, y, ours_opt)
    ours_shares = step_profile(ours, x, y, ours_opt)
    contractions, ceiling = contraction_ceiling(ours_shares, med["ours"], bound)
    print(f"its convolutions and graph products take {100 * contractions:.0f}% of its step (torch.profiler): with "
          f"every other operator free it would run at {100 * ceiling:.0f}% of the bound; the rest is the kernels' "
          "own rate at these shapes (python -m bench.bench_model --layers)")
    figures = {"shape": {"batch": args.batch, "frames": args.frames, "width": args.width, "threads": args.threads},
               "baseline": base, "baseline_ms": round(1000 * med[base], 1), "ours_ms": round(1000 * med["ours"], 1),
               "speed_up": round(statistics.median(ratios), 3), "gemm_gflops": round(peak, 1),
               "bound_ms": round(1000 * bound, 1), "share_of_bound": round(share, 3),
               "share_target": BOUND_SHARE_TARGET if shape == "paper" else None,
               "contractions_share_of_step": round(contractions, 3), "ceiling_share_of_bound": round(ceiling, 3),
               "max_output_difference": difference, "runs": len(runs)}
    if shape != "custom":
        flags = " --cpu-profile" if args.cpu_profile else ""
        path = results.write(f"bench_model_{shape}", figures,
                             f"python -m bench.bench_model{flags} --repeats {args.repeats} --runs {args.runs}", args.out)
        print(f"written to {path}")
    if args.profile:
        for _ in range(2):
            step_time(baseline, x, y, baseline_opt)
        shares = {base: step_profile(baseline, x, y, baseline_opt), "ours": ours_shares}
        for name in (base, "ours"):
            ordered = sorted(shares[name].items(), key=lambda item: -item[1])
            print(f"{name:>9} step by kind of operator: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in ordered))


if __name__ == "__main__":
    main()
