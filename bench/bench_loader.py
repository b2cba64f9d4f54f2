"""Loader throughput (memmap read + augmentation + collation) next to the training step it feeds, in one process.

    python -m bench.bench_loader [--profile cpu|paper] [--workers 0 1] [--batches 20]

On the cached synthetic set (made on first use), kinetics-motion, with the profile's batch size, window and
frame stride: clips/s of the training loader for each worker count (the trainer's own ``Loader``, timed at its
steady rate: the clock starts once worker start-up and the batches prefetched while it waited are consumed, which
would otherwise count as free clips), clips/s of the training step alone (forward, backward, optimizer step on
batches already in memory), their ratio, and the frames read per clip (a window's span, not the stored 300). The
loader must not be what limits training: at least 3x the step. Writes the rates with the machine to
bench/results/bench_loader.json.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from bench import results
from kinetics.dataset import PREFETCH_BATCHES, Loader, batches
from kinetics.source import open_data
from training.config import CPU_PROFILE, from_dict
from training.trainer import Trainer


def loader_rate(trainer: Trainer, batch_size: int, workers: int, count: int) -> float:
    iterator = iter(Loader(trainer.train_set, batch_size, 0, True, workers).epoch(0))
    for _ in range(1 + PREFETCH_BATCHES * max(workers, 1)):  # start-up and what was prefetched meanwhile
        next(iterator)
    start, clips = time.perf_counter(), 0
    for x, _ in itertools.islice(iterator, count):
        clips += len(x)
    return clips / (time.perf_counter() - start)


def step_rate(trainer: Trainer, batch_size: int, count: int) -> float:
    held = list(itertools.islice(iter(batches(trainer.train_set, batch_size, 0, 0, shuffle=True)), 3))
    trainer.model.train()
    times = []
    for i in range(count):
        x, y = held[i % len(held)]
        start = time.perf_counter()
        loss = F.cross_entropy(trainer.model(x), y)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
        times.append(time.perf_counter() - start)
    return batch_size / statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("cpu", "paper"), default="cpu")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--batches", type=int, default=20)
    results.add_out_argument(parser, "bench_loader")
    args = parser.parse_args()
    values = dict(CPU_PROFILE) if args.profile == "cpu" else {"batch_size": 16}
    config = from_dict({**values, "device": "cpu"}, source="bench")
    trainer = Trainer(config, open_data("synthetic"))
    print(f"python {platform.python_version()}, torch {torch.__version__}, {platform.machine()}, "
          f"{torch.get_num_threads()} threads; profile {args.profile} ({config.model_variant}), batch "
          f"{config.batch_size}, window {config.window}, frame stride {config.frame_stride}, "
          f"{len(trainer.train_set)} training clips")
    step = step_rate(trainer, config.batch_size, max(4, args.batches // 4))
    print(f"  training step alone: {step:8.1f} clips/s")
    loaders = []
    for workers in args.workers:
        rate = loader_rate(trainer, config.batch_size, workers, args.batches)
        loaders.append({"workers": workers, "clips_per_s": round(rate, 1), "over_step": round(rate / step, 2)})
        print(f"  loader, {workers} worker(s): {rate:8.1f} clips/s  = {rate / step:.1f}x the step")
    dataset = trainer.train_set
    dataset.frames_read = 0
    clips = sum(len(x) for x, _ in itertools.islice(iter(Loader(dataset, config.batch_size, 0, True).epoch(0)), 4))
    print(f"  frames read per training clip: {dataset.frames_read / clips:.0f} of {dataset.array.shape[2]} stored")
    figures = {"profile": args.profile, "model_variant": config.model_variant, "batch_size": config.batch_size,
               "window": config.window, "frame_stride": config.frame_stride, "threads": torch.get_num_threads(),
               "step_clips_per_s": round(step, 1), "loaders": loaders, "target_over_step": 3.0,
               "frames_read_per_clip": round(dataset.frames_read / clips), "frames_stored": dataset.array.shape[2]}
    print(f"written to {results.write('bench_loader', figures, results.command(), args.out)}")


if __name__ == "__main__":
    main()
