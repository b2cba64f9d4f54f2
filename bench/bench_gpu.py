"""The GPU path measured on a card, in one command that needs torch and nothing else (no Ray, no network).

    python -m bench.bench_gpu [--out study/gpu_figures.json] [--clips 40000] [--quick]
    python -m bench.bench_gpu --device cpu --quick --out /tmp/figures.json      # plumbing only, on the CPU

On one device, printing each figure and writing them all to ``--out`` (the JSON ``--plan`` reads,
study/plan.py):

1. the training step at the paper shape (T=150, M=2, 400 classes) at batch 64 and 256: clips/s and peak memory
   (torch.cuda.max_memory_allocated) with the trainer's defaults (bf16 autocast, channels-last, cudnn.benchmark),
   each of them off on its own, TF32 on and off in fp32, torch.compile on (and its compile time), and the
   original-style fp32 network (bench/original_stgcn.py) beside them;
2. a whole Trainer epoch as a trial runs it (training, evaluation, a checkpoint) on a Kinetics-shaped set of
   ``--clips`` clips made here (random skeletons with the converter's invariants, 300 frames, 400 classes), with the
   loader as the trainer sets it up on CUDA (pinned memory, persistent workers) and without pinning;
3. the loader alone at that batch, timed at its steady rate (after the prefetched batches are drained), against
   the step: whether loading keeps up;
4. one, two and four trials sharing the card, each its own process at the paper shape, without and (when
   ``nvidia-cuda-mps-control`` is there) with CUDA MPS;
5. accuracy: the CPU-sized network on the synthetic kinetics-motion for a few epochs, bf16 against fp32.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from bench.original_stgcn import OriginalSTGCN
from kinetics.dataset import ConvertedDataset, Loader
from kinetics.layout import CLIP_SHAPE, class_names_file, data_file, label_file, provenance_file
from kinetics.source import open_data
from kinetics.subsets import KINETICS_MOTION
from model import STGCN, ModelConfig
from training.config import CPU_PROFILE, from_dict
from training.trainer import Trainer, loader_workers_for

CLASSES = 400
FRAMES = [150]  # the window the step is timed at (--quick: 16)
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "study" / "gpu_figures.json"  # where study.plan reads it
SETTINGS = {  # name -> (bf16, channels-last, cudnn.benchmark, tf32, compile)
    "defaults (bf16, channels-last, cudnn.benchmark)": (True, True, True, False, False),
    "bf16 off (fp32, TF32 off)": (False, True, True, False, False),
    "bf16 off, TF32 on": (False, True, True, True, False),
    "channels-last off": (True, False, True, False, False),
    "cudnn.benchmark off": (True, True, False, False, False),
    "torch.compile on": (True, True, True, False, True),
}
DEFAULTS, FP32 = list(SETTINGS)[:2]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_figures(model: torch.nn.Module, batch: int, device: torch.device, bf16: bool, benchmark: bool, tf32: bool,
                 steps: int) -> dict:
    """clips/s (median over ``steps`` after three warm-up steps), the first step's time, and the peak memory."""
    torch.backends.cudnn.benchmark = benchmark
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    x = torch.randn(batch, 3, FRAMES[0], 18, 2, device=device)
    y = torch.randint(0, CLASSES, (batch,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps + 3):
        synchronize(device)
        start = time.perf_counter()
        with autocast:
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
    return {"clips_per_s": batch / statistics.median(times[3:]), "first_step_s": times[0], "peak_gib": peak}


def network(device: torch.device, channels_last: bool, compiled: bool) -> torch.nn.Module:
    model = STGCN(ModelConfig(num_classes=CLASSES)).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return torch.compile(model) if compiled else model


def steps_section(device: torch.device, batches: list[int], steps: int, quick: bool) -> dict:
    out = {}
    for batch in batches:
        rows = {}
        for name, (bf16, channels_last, benchmark, tf32, compiled) in SETTINGS.items():
            if device.type != "cuda" and (compiled or bf16):
                continue  # the trainer uses neither off CUDA (bf16 autocast on a CPU is slower than fp32)
            if compiled and quick:
                continue
            torch.manual_seed(0)
            rows[name] = step_figures(network(device, channels_last, compiled), batch, device, bf16, benchmark, tf32,
                                      steps)
        original = OriginalSTGCN(num_class=CLASSES).to(device)
        rows["original-style fp32 (TF32 off)"] = step_figures(original, batch, device, False, False, False, steps)
        base = rows["original-style fp32 (TF32 off)"]["clips_per_s"]
        for name, row in rows.items():
            peak = f"{row['peak_gib']:6.2f} GiB" if row["peak_gib"] is not None else "   n/a"
            print(f"  batch {batch:4d}  {name:50s} {row['clips_per_s']:9.1f} clips/s {row['clips_per_s'] / base:5.2f}x"
                  f"  peak {peak}  first step {row['first_step_s']:6.2f} s", flush=True)
        out[str(batch)] = rows
    return out


def make_set(root: Path, train: int, val: int, seed: int = 0) -> Path:
    """A converted Kinetics-shaped set: random skeletons that keep the converter's invariants (scores >= 0; x, y
    zero where the score is zero; frames past a clip's length empty), 400 classes with the motion classes' names."""
    rng = np.random.default_rng(seed)
    names = list(KINETICS_MOTION) + [f"class {k}" for k in range(CLASSES - len(KINETICS_MOTION))]
    for split, count in (("train", train), ("val", val)):
        array = np.lib.format.open_memmap(data_file(root, split), mode="w+", dtype=np.float32,
                                          shape=(count, *CLIP_SHAPE))
        for start in range(0, count, 2000):
            block = rng.random((min(2000, count - start), *CLIP_SHAPE), dtype=np.float32) - 0.5
            score = np.clip(block[:, 2] + 0.5, 0, 1)
            score[score < 0.1] = 0
            lengths = rng.integers(100, CLIP_SHAPE[1] + 1, len(block))
            score[np.arange(CLIP_SHAPE[1])[None, :] >= lengths[:, None]] = 0
            block[:, 2] = score
            block[:, :2] *= (score > 0)[:, None]
            array[start:start + len(block)] = block
        array.flush()
        labels = rng.integers(0, CLASSES, count)
        with open(label_file(root, split), "wb") as handle:
            pickle.dump(([f"{split}{i}" for i in range(count)], labels.tolist()), handle)
    class_names_file(root).write_text(json.dumps(names))
    provenance_file(root).write_text(json.dumps({"source": "synthetic", "note": "bench_gpu: random skeletons"}))
    return root


def epoch_section(device: torch.device, data: Path, batch: int, width: float = 1.0) -> dict:
    """One whole Trainer epoch as a trial runs it (kinetics-392: 392 of the 400 classes), pinned and not.
    ``width`` < 1 only for --quick, whose figures mean nothing: the paper-shape epoch is most of its time on a CPU."""
    out = {}
    for pinned in (True, False):
        config = from_dict({"subset": "kinetics-392", "batch_size": batch, "epochs": 1, "scheduler": "none",
                            "device": device.type, "sample_images": 0, "window": FRAMES[0], "width": width},
                           source="bench_gpu")
        trainer = Trainer(config, ConvertedDataset(data))
        if not pinned:
            trainer.train_loader = Loader(trainer.train_set, batch, 0, True, trainer.loader_workers, False)
            trainer.val_loader = Loader(trainer.val_set, config.eval_batch_size, 0, False, trainer.loader_workers, False)
        start = time.perf_counter()
        metrics = trainer.run_epoch()
        with tempfile.TemporaryDirectory() as directory:
            saved = time.perf_counter()
            torch.save(trainer.state_dict(), Path(directory) / "checkpoint.pt")
            checkpoint_s = time.perf_counter() - saved
        total = time.perf_counter() - start
        row = {"epoch_s": total, "train_clips_per_s": metrics["clips_per_s"], "train_clips": metrics["train_clips"],
               "val_clips": metrics["val_clips"], "checkpoint_s": checkpoint_s, "loader_workers": trainer.loader_workers}
        print(f"  {'pinned' if pinned else 'not pinned':10s} {trainer.loader_workers} loader worker(s): epoch "
              f"{total:6.1f} s ({metrics['train_clips']} training clips at {metrics['clips_per_s']:8.1f} clips/s, "
              f"{metrics['val_clips']} validation clips, checkpoint {checkpoint_s:.2f} s)", flush=True)
        out["pinned" if pinned else "not pinned"] = row
    return out


def loader_section(data: Path, batch: int, step_rate: float, quick: bool) -> dict:
    """The training loader's steady rate: the clock starts once the batches prefetched before it are consumed."""
    config = from_dict({"subset": "kinetics-392", "batch_size": batch, "device": "cpu", "sample_images": 0},
                       source="bench_gpu")
    trainer = Trainer(config, ConvertedDataset(data))
    out = {}
    for workers in sorted({0, loader_workers_for(None, torch.device("cuda"))}):
        loader = Loader(trainer.train_set, batch, 0, True, workers).epoch(0)
        iterator = iter(loader)
        for _ in range(1 + 4 * max(workers, 1)):  # worker start-up and the prefetched batches are not throughput
            next(iterator)
        count, start = (4 if quick else 24), time.perf_counter()
        clips = sum(len(x) for x, _ in (next(iterator) for _ in range(count)))
        rate = clips / (time.perf_counter() - start)
        print(f"  {workers} worker(s): {rate:9.1f} clips/s = {rate / step_rate:.2f}x the step", flush=True)
        out[str(workers)] = rate
    return out


def shared_trial(device: str, batch: int, steps: int, frames: int, start, results) -> None:
    FRAMES[0] = frames  # a spawned process imports this module afresh
    torch.set_num_threads(1)
    model = network(torch.device(device), True, False)
    start.wait()
    results.put(step_figures(model, batch, torch.device(device), device == "cuda", True, False, steps)["clips_per_s"])


def sharing_rate(device: str, trials: int, batch: int, steps: int) -> dict:
    context = mp.get_context("spawn")
    start, results = context.Barrier(trials), context.Queue()
    workers = [context.Process(target=shared_trial, args=(device, batch, steps, FRAMES[0], start, results))
               for _ in range(trials)]
    for worker in workers:
        worker.start()
    rates = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return {"total": sum(rates), "per_trial": statistics.median(rates)}


def sharing_section(device: torch.device, batch: int, steps: int, counts: list[int]) -> dict:
    out = {}
    modes = ["without MPS"]
    if device.type == "cuda" and shutil.which("nvidia-cuda-mps-control"):
        modes.append("with MPS")
    for mode in modes:
        if mode == "with MPS":
            subprocess.run(["nvidia-cuda-mps-control", "-d"], check=False)
        try:
            for trials in counts:
                row = sharing_rate(device.type, trials, batch, steps)
                print(f"  {mode:11s} {trials} trial(s): {row['total']:9.1f} clips/s in all, {row['per_trial']:8.1f} "
                      "per trial", flush=True)
                out[f"{mode}, {trials}"] = row
        finally:
            if mode == "with MPS":
                subprocess.run(["nvidia-cuda-mps-control"], input=b"quit\n", check=False)
    if len(modes) == 1:
        print("  (CUDA MPS not measured: nvidia-cuda-mps-control is not on this machine)")
    return out


def parity_section(device: torch.device, epochs: int, data: str) -> dict:
    """Val top-1 per epoch of the CPU-sized kinetics-motion run, bf16 autocast against fp32, same seed."""
    curves = {}
    for label, amp in (("bf16", True), ("fp32", False)):
        config = from_dict({**CPU_PROFILE, "device": device.type, "epochs": epochs, "scheduler": "none", "amp": amp,
                            "lr": 0.0133, "sample_images": 0}, source="bench_gpu")
        trainer = Trainer(config, open_data(data))
        curves[label] = [trainer.run_epoch()["val_top1"] for _ in range(epochs)]
        print(f"  {label}: " + " ".join(f"{100 * v:5.1f}%" for v in curves[label]), flush=True)
    return curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--clips", type=int, default=40_000, help="training clips of the Kinetics-shaped set")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a plumbing check, figures mean nothing")
    parser.add_argument("--data", default="synthetic", help="the converted set of the accuracy check (default: the "
                        "built-in synthetic one, made once and cached)")
    args = parser.parse_args()
    device = torch.device(args.device)
    quick = args.quick
    batches = [4, 8] if quick else [64, 256]
    FRAMES[0] = 16 if quick else 150
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    figures = {"card": card, "device": args.device, "torch": torch.__version__, "cuda": torch.version.cuda,
               "memory_gib": torch.cuda.get_device_properties(device).total_memory / 2 ** 30
               if device.type == "cuda" else None, "quick": quick, "cpus": os.cpu_count()}
    began = time.perf_counter()
    print(f"{card}; torch {torch.__version__}, CUDA {torch.version.cuda}; paper shape, T={FRAMES[0]}, M=2, {CLASSES} "
          "classes", flush=True)
    print("1. training step", flush=True)
    figures["steps"] = steps_section(device, batches, 2 if quick else args.steps, quick)
    defaults = DEFAULTS if device.type == "cuda" else FP32  # the trainer's settings on this device
    figures["train_clips_per_s"] = {b: rows[defaults]["clips_per_s"] for b, rows in figures["steps"].items()}
    compiled = [rows.get("torch.compile on") for rows in figures["steps"].values()]
    figures["compile_s"] = next((row["first_step_s"] for row in compiled if row), None)
    with tempfile.TemporaryDirectory() as directory:
        clips = 160 if quick else args.clips  # quick: enough batches to drain the prefetch and time 4
        data = make_set(Path(directory), clips, 16 if quick else clips // 10)
        print(f"2. a whole Trainer epoch, {clips} Kinetics-shaped clips made here, batch {batches[-1]}", flush=True)
        figures["epoch"] = epoch_section(device, data, batches[-1], 0.125 if quick else 1.0)
        step_rate = figures["train_clips_per_s"][str(batches[-1])]
        print(f"3. the training loader at batch {batches[-1]}, against the step's {step_rate:.0f} clips/s", flush=True)
        figures["loader_clips_per_s"] = loader_section(data, batches[-1], step_rate, quick)
    print(f"4. trials sharing the device (batch {batches[0]}, each its own process)", flush=True)
    figures["sharing"] = sharing_section(device, batches[0], 2 if quick else args.steps, [1, 2] if quick else [1, 2, 4])
    print("5. accuracy, CPU-sized kinetics-motion on the synthetic set, val top-1 per epoch", flush=True)
    figures["parity"] = parity_section(device, 1 if quick else 4, args.data)
    figures["seconds"] = time.perf_counter() - began
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures: {args.out} ({figures['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
