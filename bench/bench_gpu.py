"""The GPU path, for a session that has a GPU (CI never does).

    python -m bench.bench_gpu [--batches 64 256] [--frames 150] [--steps 20] [--compile] [--sharing 1 2 4]
    python -m bench.bench_gpu --device cpu --batches 2 --frames 16 --steps 2 --sharing 1 2 --epochs 1

Prints, on one device and in one process:
1. training clips/s (forward + backward + SGD nesterov, 30 classes, M=2) of the fp32 straightforward
   implementation (bench/original_stgcn.py, NCHW, cudnn.benchmark off) and of model/ as the trainer runs it on
   CUDA (channels-last, bf16 autocast, cudnn.benchmark; torch.compile with --compile), and their ratio;
2. accuracy parity: a short synthetic kinetics-motion run (CPU-sized profile) with the trainer's CUDA defaults
   on and with them off (``amp``, ``cudnn_benchmark``), same seed, val top-1 per epoch;
3. aggregate clips/s of 1, 2, 4 kinetics-motion-sized trials (paper shape, the first --batches) sharing the
   device, each in its own process as Ray runs them: what the default --gpus-per-trial should follow;
4. the training loader at the paper shape (window 150, the first --batches) in-process and with the worker
   count the trainer picks on CUDA, next to ours' clips/s from 1.: whether loading can keep up with the GPU.
The second command is a plumbing check on the CPU (bf16 autocast exists there too); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from contextlib import nullcontext

import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from bench.bench_loader import loader_rate
from bench.original_stgcn import OriginalSTGCN
from kinetics.source import open_data
from model import STGCN, ModelConfig
from training.config import CPU_PROFILE, from_dict
from training.trainer import Trainer, loader_workers_for

CLASSES = 30


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clips_per_s(model: torch.nn.Module, batch: int, frames: int, device: torch.device, fast: bool,
                steps: int) -> float:
    """Median over ``steps`` timed steps, after three warm-up steps (cudnn.benchmark's search, compilation)."""
    torch.backends.cudnn.benchmark = fast
    x = torch.randn(batch, 3, frames, 18, 2, device=device)
    y = torch.randint(0, CLASSES, (batch,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if fast else nullcontext()
    times = []
    for step in range(steps + 3):
        synchronize(device)
        start = time.perf_counter()
        with autocast:
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize(device)
        if step >= 3:
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def ours(device: torch.device, compiled: bool) -> torch.nn.Module:
    model = STGCN(ModelConfig(num_classes=CLASSES)).to(device, memory_format=torch.channels_last)
    return torch.compile(model) if compiled else model


def shared_trial(device: str, batch: int, frames: int, steps: int, start, results) -> None:
    """One trial's process: waits for the others, then trains and reports its clips/s."""
    torch.set_num_threads(1)
    model = ours(torch.device(device), compiled=False)
    start.wait()
    results.put(clips_per_s(model, batch, frames, torch.device(device), fast=True, steps=steps))


def sharing_rate(device: str, trials: int, batch: int, frames: int, steps: int) -> tuple[float, float]:
    """(aggregate, per-trial median) clips/s of ``trials`` processes training at once on one device."""
    context = mp.get_context("spawn")
    start, results = context.Barrier(trials), context.Queue()
    workers = [context.Process(target=shared_trial, args=(device, batch, frames, steps, start, results))
               for _ in range(trials)]
    for worker in workers:
        worker.start()
    rates = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return sum(rates), statistics.median(rates)


def parity(device: str, epochs: int) -> dict[str, list[float]]:
    """Val top-1 per epoch of the CPU-sized kinetics-motion run with the CUDA defaults on and off."""
    curves = {}
    for label, fast in (("defaults on", True), ("defaults off", False)):
        config = from_dict({**CPU_PROFILE, "device": device, "epochs": epochs, "scheduler": "none",
                            "amp": fast, "cudnn_benchmark": fast, "sample_images": 0}, source="bench_gpu")
        trainer = Trainer(config, open_data("synthetic"))
        curves[label] = [trainer.run_epoch()["val_top1"] for _ in range(epochs)]
    return curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--compile", action="store_true", help="also time model/ under torch.compile")
    parser.add_argument("--sharing", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--epochs", type=int, default=4, help="epochs of the parity run")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"{name}; torch {torch.__version__}; T={args.frames}, M=2, {CLASSES} classes, paper shape")
    step_rates = {}
    for batch in args.batches:
        baseline = clips_per_s(OriginalSTGCN(num_class=CLASSES).to(device), batch, args.frames, device,
                               fast=False, steps=args.steps)
        rates = {"fp32 straightforward": baseline,
                 "ours, bf16 + channels-last + cudnn.benchmark": clips_per_s(
                     ours(device, False), batch, args.frames, device, fast=True, steps=args.steps)}
        if args.compile:
            rates["ours, as above + torch.compile"] = clips_per_s(ours(device, True), batch, args.frames, device,
                                                                  fast=True, steps=args.steps)
        for label, rate in rates.items():
            print(f"  batch {batch:4d}  {label:48s} {rate:9.1f} clips/s  {rate / baseline:5.2f}x")
        step_rates[batch] = max(list(rates.values())[1:])
    print(f"accuracy parity, CPU-sized kinetics-motion on synthetic data, {args.epochs} epochs, val top-1:")
    for label, curve in parity(args.device, args.epochs).items():
        print(f"  {label:13s} " + " ".join(f"{100 * v:5.1f}%" for v in curve))
    print(f"trials sharing the device (paper shape, batch {args.batches[0]}, each its own process):")
    for trials in args.sharing:
        total, each = sharing_rate(args.device, trials, args.batches[0], args.frames, args.steps)
        print(f"  {trials} trial(s): {total:9.1f} clips/s in all, {each:8.1f} per trial")
    batch = args.batches[0]
    trainer = Trainer(from_dict({"batch_size": batch, "device": "cpu", "sample_images": 0}, source="bench_gpu"),
                      open_data("synthetic"))
    print(f"the training loader, paper shape, batch {batch}, against ours' {step_rates[batch]:.1f} clips/s:")
    for workers in sorted({0, loader_workers_for(None, torch.device("cuda"))}):
        rate = loader_rate(trainer, batch, workers, count=8)
        print(f"  {workers} worker(s): {rate:9.1f} clips/s = {rate / step_rates[batch]:.1f}x the step")


if __name__ == "__main__":
    main()
