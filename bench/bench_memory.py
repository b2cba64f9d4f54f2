"""Resident memory of training on a small and a large converted dataset: it must not grow with the dataset.

    python -m bench.bench_memory [--small-mb 40] [--large-mb 4000] [--batches 40]

Writes two converted datasets of the given sizes (random skeleton values, the converter's file layout, written
straight to .npy memory maps, so making 4 GB takes seconds, not a conversion), then in a fresh process each
trains the CPU-sized network for the same number of batches drawn from the whole training split, and reports
the process's peak anonymous memory (its own allocations) and its file-backed resident pages (the memory map:
page cache, given back under memory pressure). Only the first must stay flat. Writes the figures with the machine
to bench/results/bench_memory.json.
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from bench import results
from kinetics.synth import class_names

CLIP_BYTES = 3 * 300 * 18 * 2 * 4
CLASSES = 30


def write_dataset(root: Path, megabytes: int) -> int:
    """A converted dataset of about ``megabytes`` (training split), kinetics-motion class names."""
    root.mkdir(parents=True, exist_ok=True)
    clips = max(2 * CLASSES, megabytes * 1_000_000 // CLIP_BYTES)
    rng = np.random.default_rng(0)
    for split, count in (("train", clips), ("val", 2 * CLASSES)):
        data = open_memmap(root / f"{split}_data.npy", mode="w+", dtype=np.float32, shape=(count, 3, 300, 18, 2))
        for start in range(0, count, 1024):
            stop = min(count, start + 1024)
            block = rng.uniform(-0.5, 0.5, (stop - start, 3, 300, 18, 2)).astype(np.float32)
            block[:, 2] += 0.5  # scores in [0, 1), as the converter guarantees
            data[start:stop] = block
        data.flush()
        del data
        labels = (np.arange(count) % CLASSES).tolist()
        with open(root / f"{split}_label.pkl", "wb") as handle:
            pickle.dump(([f"{split}_{i}" for i in range(count)], labels), handle)
    (root / "class_names.json").write_text(json.dumps(class_names(CLASSES)))
    return clips


def measure(root: Path, batches: int) -> dict:
    """In this (fresh) process: train ``batches`` batches, return peak anonymous and file-backed memory."""
    import itertools

    import torch.nn.functional as F

    from kinetics.dataset import ConvertedDataset
    from kinetics.dataset import batches as loader
    from training.config import CPU_PROFILE, from_dict
    from training.trainer import Trainer
    trainer = Trainer(from_dict({**CPU_PROFILE, "data": str(root), "device": "cpu"}, source="bench"),
                      ConvertedDataset(root))
    peak_anon = 0
    for x, y in itertools.islice(loader(trainer.train_set, 32, 0, 0, shuffle=True), batches):
        loss = F.cross_entropy(trainer.model(x), y)
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
        status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
        peak_anon = max(peak_anon, int(status["RssAnon"].split()[0]))
    return {"peak_rss_anon_mb": peak_anon / 1024, "rss_file_mb": int(status["RssFile"].split()[0]) / 1024,
            "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-mb", type=int, default=40)
    parser.add_argument("--large-mb", type=int, default=4000)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child process's entry point
    results.add_out_argument(parser, "bench_memory")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.batches)))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        print(f"{args.batches} training batches of 32 (CPU profile) on each dataset, each in a fresh process")
        for label, megabytes in (("small", args.small_mb), ("large", args.large_mb)):
            root = Path(tmp) / label
            clips = write_dataset(root, megabytes)
            done = subprocess.run([sys.executable, "-m", "bench.bench_memory", "--measure", str(root), "--batches",
                                   str(args.batches)], capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            size = (root / "train_data.npy").stat().st_size / 1e6
            print(f"  {label:5s} {size:7.0f} MB on disk ({clips} clips): peak anonymous "
                  f"{result['peak_rss_anon_mb']:6.0f} MB, file-backed now {result['rss_file_mb']:6.0f} MB, "
                  f"peak RSS {result['peak_rss_mb']:6.0f} MB")
            rows.append({"dataset": label, "disk_mb": round(size), "clips": clips,
                         **{key: round(value, 1) for key, value in result.items()}})
    figures = {"batches": args.batches, "batch_size": 32, "profile": "cpu", "rows": rows}
    print(f"written to {results.write('bench_memory', figures, results.command(), args.out)}")


if __name__ == "__main__":
    main()
