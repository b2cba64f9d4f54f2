"""ST-GCN training, one epoch at a time. Knows nothing of Ray: config and dataset in, metrics out, and a
state dict that resumes a run exactly (same per-epoch metrics as an uninterrupted run on CPU).
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F

from model import STGCN, ModelConfig, load_original_checkpoint
from study.config import TrainConfig
from study.data.dataset import Augmentation, ConvertedDataset, SkeletonBatches, batches
from study.data.subsets import SubsetSpec
from study.schedule import EpochSchedule


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available on this machine")
    return torch.device(name)


def loader_workers_for(requested: int | None, device: torch.device) -> int:
    """Loader processes of a trial unless the config names a count. On the CPU none: the step needs the trial's
    cores, and loading in-process runs over 50x faster than the step (bench/bench_loader.py). On CUDA one per CPU
    thread of the trial (Ray sets the thread count to the trial's CPUs), at most 4, so the next batches load
    while the GPU trains instead of between its steps."""
    if requested is not None:
        return requested
    return max(1, min(4, torch.get_num_threads())) if device.type == "cuda" else 0


def subset_spec(config: TrainConfig) -> SubsetSpec:
    return SubsetSpec(config.subset, config.classes_file, config.fraction_per_class, config.cap_per_class,
                      config.seed)


class Trainer:
    def __init__(self, config: TrainConfig, dataset: ConvertedDataset):
        self.config = config
        self.dataset = dataset
        self.device = pick_device(config.device)
        self.loader_workers = loader_workers_for(config.loader_workers, self.device)
        torch.manual_seed(config.seed)
        index = dataset.subset(subset_spec(config))
        self.class_names = index["train"].class_names
        self.num_classes = len(self.class_names)
        window = Augmentation(window=config.window, shift=config.random_shift, move=config.random_move)
        self.train_set = SkeletonBatches(dataset.splits["train"], index["train"], window, config.frame_stride)
        self.val_set = SkeletonBatches(dataset.splits["val"], index["val"], None, config.frame_stride)
        # Channels-last weights match the channels-last activations the graph conv produces (no reorders).
        self.model = self._build_model().to(self.device, memory_format=torch.channels_last)
        cuda = self.device.type == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = config.cudnn_benchmark
        # The compiled module shares the model's parameters; checkpoints keep the plain module's names. Not on
        # CPU: it measured no faster there (bench/README.md) and torch 2.13's CPU backward crashed on some shapes.
        self.train_model = torch.compile(self.model) if config.compile and cuda else self.model
        self.optimizer = self._build_optimizer()
        self.schedule = EpochSchedule(config)
        self.epoch = 0  # epochs finished
        self.history: list[dict] = []
        self.diverged = False

    def _build_model(self) -> STGCN:
        c = self.config
        if c.pretrained:
            if c.width != 1.0:
                raise ValueError(f"pretrained weights ({c.pretrained}) are paper-shape; width must be 1.0, got {c.width}")
            return load_original_checkpoint(c.pretrained, num_classes=self.num_classes)
        return STGCN(ModelConfig(num_classes=self.num_classes, width=c.width, dropout=c.dropout))

    def _build_optimizer(self) -> torch.optim.Optimizer:
        c, params = self.config, self.model.parameters()
        if c.optimizer == "sgd":
            return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov and c.momentum > 0,
                                   weight_decay=c.weight_decay)
        cls = torch.optim.Adam if c.optimizer == "adam" else torch.optim.AdamW
        return cls(params, lr=c.lr, betas=(c.beta1, c.beta2), weight_decay=c.weight_decay)

    def _autocast(self):
        if self.config.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    @property
    def finished(self) -> bool:
        return self.diverged or self.epoch >= self.config.epochs

    def run_epoch(self) -> dict:
        """Train and evaluate one epoch; returns its metrics (also appended to ``history``)."""
        epoch = self.epoch
        lr = self.schedule.lr(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        start = time.perf_counter()
        train = self._train(epoch)
        train_time = time.perf_counter() - start
        val = self._evaluate() if not self.diverged else {"val_loss": math.nan, "val_top1": math.nan,
                                                          "val_top5": math.nan, "inference_ms_per_clip": math.nan}
        if not self.diverged:
            self.schedule.observe(epoch, val["val_loss"])
        metrics = {"epoch": epoch + 1, **train, **val, "epoch_lr": lr, "epoch_time_s": time.perf_counter() - start,
                   "clips_per_s": train["train_clips"] / train_time if train_time > 0 else math.nan,
                   "diverged": self.diverged}
        del metrics["train_clips"]
        self.history.append(metrics)
        self.epoch += 1
        return metrics

    def _train(self, epoch: int) -> dict:
        self.model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for x, y in batches(self.train_set, self.config.batch_size, self.config.seed, epoch, shuffle=True,
                            workers=self.loader_workers):
            x, y = self._to_device(x), y.to(self.device, non_blocking=True)
            with self._autocast():
                logits = self.train_model(x)
                loss = F.cross_entropy(logits.float(), y)
            if not torch.isfinite(loss):
                self.diverged = True
                return {"train_loss": math.nan, "train_top1": math.nan, "train_clips": seen}
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
        return {"train_loss": loss_sum / seen, "train_top1": correct / seen, "train_clips": seen}

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True)

    @torch.no_grad()
    def _evaluate(self) -> dict:
        self.model.eval()
        loss_sum, top1, top5, seen, forward_s = 0.0, 0, 0, 0, 0.0
        k = min(5, self.num_classes)
        for x, y in batches(self.val_set, self.config.eval_batch_size, 0, 0, shuffle=False,
                            workers=self.loader_workers):
            x, y = self._to_device(x), y.to(self.device)
            start = time.perf_counter()
            with self._autocast():
                logits = self.model(x).float()
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            forward_s += time.perf_counter() - start
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            best = logits.topk(k, dim=1).indices
            top1 += (best[:, 0] == y).sum().item()
            top5 += (best == y[:, None]).any(dim=1).sum().item()
            seen += len(y)
        return {"val_loss": loss_sum / seen, "val_top1": top1 / seen, "val_top5": top5 / seen,
                "inference_ms_per_clip": 1000.0 * forward_s / seen}

    @torch.no_grad()
    def sample_predictions(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The first ``count`` validation clips (C, T, V, M), their true and predicted labels."""
        self.model.eval()
        x, y = self.val_set.__getitems__((0, list(range(min(count, len(self.val_set))))))
        with self._autocast():
            predicted = self.model(self._to_device(x)).float().argmax(1).cpu()
        return x.numpy(), y.numpy(), predicted.numpy()

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "epoch": self.epoch, "history": self.history,
                "diverged": self.diverged, "torch_rng": torch.get_rng_state(), "config": self.config.to_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.epoch, self.history, self.diverged = state["epoch"], list(state["history"]), state["diverged"]
        torch.set_rng_state(state["torch_rng"])
