"""Augmentation (random shift, random choose to a window, random move) on a batch: kinetics.augment vs the
authors' per-clip, per-frame implementation (bench/original_augment.py), same clips, same process.

    python -m bench.bench_augment [--batch 64] [--window 150] [--repeats 7]

Prints median time per clip for each, their ratio, and moments of the outputs of both over many draws (the
two must draw from the same distribution: same mean and spread of coordinates, same share of zeroed frames).
Timed twice: alternating (each call right after the other implementation ran: the headline figure, as in a
process where augmentation shares the CPU caches and the allocator with other work) and in blocks (each
implementation's calls back to back, warm caches and allocator: what a dedicated loader worker sees). Writes the
figures with the machine to bench/results/bench_augment.json.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from bench import original_augment as original
from bench import results
from kinetics.augment import augment


def clips(batch: int, seed: int = 0) -> np.ndarray:
    """Kinetics-shaped clips (3, 300, 18, 2): a person over a random stretch of frames, some joints absent."""
    rng = np.random.default_rng(seed)
    x = np.zeros((batch, 3, 300, 18, 2), dtype=np.float32)
    for i in range(batch):
        start, length = rng.integers(0, 100), rng.integers(80, 200)
        x[i, :2, start:start + length] = rng.uniform(-0.5, 0.5, (2, length, 18, 2))
        x[i, 2, start:start + length] = rng.uniform(0.2, 1.0, (length, 18, 2))
        absent = rng.random((length, 18, 2)) < 0.1
        x[i, :, start:start + length][:, absent] = 0
    return x


def per_clip(x: np.ndarray, window: int) -> np.ndarray:
    return np.stack([original.random_move(original.random_choose(original.random_shift(c), window)) for c in x])


def batched(x: torch.Tensor, window: int, gen: torch.Generator) -> torch.Tensor:
    return augment(x, window, gen, choose=True, shift=True, move=True)


def per_clip_time(call, batch: int) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) / batch


def moments(out: np.ndarray) -> tuple[float, float, float]:
    xy = out[:, :2]
    return float(xy.mean()), float(xy.std()), float((np.abs(out).sum(axis=(1, 3, 4)) == 0).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--window", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=7)
    results.add_out_argument(parser, "bench_augment")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one loader worker's share: the per-frame loop is single-threaded too
    x = clips(args.batch)
    xt = torch.from_numpy(x)
    gen = torch.Generator().manual_seed(0)
    calls = {"per-frame original": lambda: per_clip(x, args.window), "batched (ours)": lambda: batched(xt, args.window, gen)}
    alternating, blocks = {name: [] for name in calls}, {name: [] for name in calls}
    for _ in range(args.repeats):
        for name, call in calls.items():
            alternating[name].append(per_clip_time(call, args.batch))
    for name, call in calls.items():
        call()
        blocks[name] = [per_clip_time(call, args.batch) for _ in range(args.repeats)]
    print(f"python {platform.python_version()}, torch {torch.__version__}, {platform.machine()}, 1 thread; "
          f"batch {args.batch}, window {args.window}, {args.repeats} repeats")
    timings = {}
    for label, times in (("alternating", alternating), ("in blocks", blocks)):
        medians = timings[label] = {k: statistics.median(v) for k, v in times.items()}
        print(f"  {label}: " + ", ".join(f"{name} {1e3 * value:.3f} ms/clip" for name, value in medians.items())
              + f"; speed-up {medians['per-frame original'] / medians['batched (ours)']:.0f}x per clip")
    np.random.seed(1)
    ours = np.concatenate([batched(xt, args.window, gen).numpy() for _ in range(8)])
    theirs = np.concatenate([per_clip(x, args.window) for _ in range(8)])
    print("  output moments (mean xy, std xy, share of all-zero frames) over 8 draws of the batch:")
    print("    original: {:.4f} {:.4f} {:.4f}".format(*moments(theirs)))
    print("    ours:     {:.4f} {:.4f} {:.4f}".format(*moments(ours)))
    figures = {"batch": args.batch, "window": args.window, "repeats": args.repeats, "threads": 1,
               "ms_per_clip": {label: {name: round(1e3 * value, 4) for name, value in medians.items()}
                               for label, medians in timings.items()},
               "speed_up": {label: round(m["per-frame original"] / m["batched (ours)"], 1) for label, m in timings.items()},
               "moments": {"names": ["mean xy", "std xy", "share of all-zero frames"],
                           "original": [round(v, 4) for v in moments(theirs)], "ours": [round(v, 4) for v in moments(ours)]}}
    print(f"written to {results.write('bench_augment', figures, results.command(), args.out)}")


if __name__ == "__main__":
    main()
