"""Training step of model/'s ST-GCN vs the straightforward original-style one, same weights, same process.

    python -m bench.bench_model [--batch 16] [--frames 150] [--classes 30] [--width 1.0] [--repeats 5] [--runs 1]
                                [--profile]

Prints the median step time of each (forward + backward + SGD nesterov step), their ratio, and the largest
output difference. Repeats alternate between the two so machine noise hits both alike. ``--runs N`` repeats the
whole comparison in N fresh processes and prints the median of their ratios: from one process to the next the
original's step time varies more than ours does (it allocates more, for its copies). Also the step's FLOPs
per clip (torch's FlopCounterMode) and the GFLOP/s each achieves against a large fp32 matmul timed in the same
process: the convolutions alone at that matmul rate bound what any implementation of the same arithmetic can do.
``--profile`` adds where each implementation's step goes (torch.profiler, self CPU time by kind of operator).
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from bench.original_stgcn import OriginalSTGCN
from model import STGCN, ModelConfig


def step_time(model, x, y) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
    start = time.perf_counter()
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def step_flops(model, x, y) -> dict[str, float]:
    """FLOPs of one forward + backward by operator (the SGD update is elementwise, not counted)."""
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return {str(op): float(count) for op, count in counter.get_flop_counts()["Global"].items()}


def matmul_gflops(size: int = 4096, repeats: int = 5) -> float:
    """The machine's practical fp32 peak: median GFLOP/s of a size x size matmul."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


# Operator name fragments -> the kind of work the profile table reports them under (first match wins).
OPERATOR_KINDS = (("convolution", "convolutions"), ("bmm", "aggregation (bmm/mm)"), ("aten::mm", "aggregation (bmm/mm)"),
                  ("batch_norm", "batch norm"), ("copy_", "copies"), ("clone", "copies"), ("threshold", "ReLU"),
                  ("relu", "ReLU"), ("clamp", "ReLU"))


def step_profile(model, x, y) -> dict[str, float]:
    """Share of one step's self CPU time by kind of operator; whatever matches no kind is 'other'."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step_time(model, x, y)
    shares: dict[str, float] = {}
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in events)
    for event in events:
        kind = next((k for fragment, k in OPERATOR_KINDS if fragment in event.key), "other")
        shares[kind] = shares.get(kind, 0.0) + event.self_cpu_time_total / total
    return shares


def build(args):
    """Both networks with the same weights, the input batch, and the largest eval output difference."""
    torch.manual_seed(0)
    ours = STGCN(ModelConfig(num_classes=args.classes, width=args.width))
    original = OriginalSTGCN(num_class=args.classes, channels=ours.config.channels())
    original.load_state_dict(ours.state_dict())
    x = torch.randn(args.batch, 3, args.frames, 18, 2)
    y = torch.randint(0, args.classes, (args.batch,))
    with torch.no_grad():
        difference = (ours.eval()(x) - original.eval()(x)).abs().max().item()
    ours = ours.to(memory_format=torch.channels_last)  # as the trainer runs it
    return ours.train(), original.train(), x, y, difference


def compare(args) -> dict[str, float]:
    """Median step time of each implementation, repeats alternating, after one warm-up step of each."""
    ours, original, x, y, _ = build(args)
    for model in (ours, original):  # warm-up: allocator, oneDNN primitive caches
        step_time(model, x, y)
    times = {"ours": [], "original": []}
    for _ in range(args.repeats):
        times["ours"].append(step_time(ours, x, y))
        times["original"].append(step_time(original, x, y))
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--classes", type=int, default=30)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1, help="fresh processes, each a whole comparison")
    parser.add_argument("--profile", action="store_true", help="also print where each step's time goes")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"shape: batch {args.batch}, T={args.frames}, M=2, {args.classes} classes, width x{args.width:g}, fp32")
    if args.runs == 1:
        runs = [compare(args)]
    else:
        with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
            runs = [pool.apply(compare, (args,)) for _ in range(args.runs)]
    ratios = [run["original"] / run["ours"] for run in runs]
    for i, run in enumerate(runs):
        label = f"run {i + 1}: " if len(runs) > 1 else ""
        print(f"{label}original {1000 * run['original']:7.1f} ms/step, ours {1000 * run['ours']:7.1f} ms/step "
              f"(medians over {args.repeats}): {ratios[i]:.2f}x")
    med = {name: statistics.median(run[name] for run in runs) for name in ("original", "ours")}
    for name in ("original", "ours"):
        print(f"{name:>9}: median {1000 * med[name]:8.1f} ms/step, {args.batch / med[name]:7.1f} clips/s")
    print(f"speed-up ours/original: {statistics.median(ratios):.2f}x" +
          (f" (median of {len(runs)} runs, {min(ratios):.2f}-{max(ratios):.2f}x)" if len(runs) > 1 else ""))
    ours, original, x, y, difference = build(args)
    print(f"max |output difference| (eval): {difference:.2e}")
    flops = step_flops(ours, x, y)
    total, convolution = sum(flops.values()), sum(v for k, v in flops.items() if "convolution" in k)
    peak = matmul_gflops()
    print(f"FLOPs per clip (forward + backward): {total / args.batch / 1e9:.1f} G, of which convolutions "
          f"{convolution / args.batch / 1e9:.1f} G; large fp32 matmul: {peak:.0f} GFLOP/s")
    for name in ("original", "ours"):
        rate = total / med[name] / 1e9
        print(f"{name:>9}: {rate:5.0f} GFLOP/s ({100 * rate / peak:.0f}% of the matmul)")
    bound = convolution / (peak * 1e9)
    print(f"convolutions alone at the matmul rate: {1000 * bound:.0f} ms/step, i.e. at most "
          f"{med['original'] / bound:.2f}x over the original for any implementation of the same arithmetic")
    if args.profile:
        for model in (ours, original):  # warm-up, as before the timed steps
            step_time(model, x, y)
        for name, model in (("original", original), ("ours", ours)):
            shares = sorted(step_profile(model, x, y).items(), key=lambda item: -item[1])
            print(f"{name:>9} step by kind of operator: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in shares))


if __name__ == "__main__":
    main()
