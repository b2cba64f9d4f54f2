"""ST-GCN training, one epoch at a time. Knows nothing of Ray: config and dataset in, metrics out, and a
state dict that resumes a run exactly (same per-epoch metrics as an uninterrupted run on CPU).
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kinetics.dataset import Augmentation, ConvertedDataset, Loader, SkeletonBatches
from kinetics.subsets import KINETICS_MOTION, SubsetSpec
from model import STGCN, CheckpointError, ModelConfig, load_original_checkpoint
from training.config import ConfigError, TrainConfig
from training.schedule import EpochSchedule

VALIDATION_METRICS = ("val_loss", "val_top1", "val_top5", "inference_ms_per_clip", "motion_top1", "motion_mean_class")
DIVERGENCE_CHECK_STEPS = 32  # steps between reads of the running loss (a GPU sync) to stop a diverged run


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
                      config.seed, config.sampling)


def check_same_config(state: dict, config: TrainConfig) -> None:
    """Refuses a state trained with another config: resumed epochs would not continue that run."""
    ours = config.to_dict()
    differing = ", ".join(f"{k}={v!r}" for k, v in sorted(state["config"].items()) if ours.get(k) != v)
    if differing:
        raise ConfigError(f"the checkpoint was trained with other values ({differing}); resume with its config")


class Trainer:
    def __init__(self, config: TrainConfig, dataset: ConvertedDataset, device: str | None = None,
                 weights: Path | None = None, validated_after: Collection[int] = ()):
        """``device``: where to train when the caller decided it (a Ray trial: what Ray reserved), else the
        config's. ``weights``: the checkpoint file ``config.pretrained`` names (see training.pretrain).
        ``validated_after``: epochs validated whatever ``eval_interval`` says (a study's ASHA rungs: its scheduler
        and its report compare trials there)."""
        self.config = config
        self.validated_after = frozenset(validated_after)
        self.dataset = dataset
        self.device = pick_device(device or config.device)
        self.loader_workers = loader_workers_for(config.loader_workers, self.device)
        torch.manual_seed(config.seed)
        index = dataset.subset(subset_spec(config))
        self.class_names = index["train"].class_names
        self.num_classes = len(self.class_names)
        # Kinetics-Motion as the paper measured it: a model trained on more classes, scored on the motion classes'
        # validation clips. Only for a subset that holds all of them and more (kinetics-392); empty otherwise.
        self.motion_labels = torch.tensor([self.class_names.index(n) for n in KINETICS_MOTION]) \
            if set(KINETICS_MOTION) < set(self.class_names) else None
        window = Augmentation(window=config.window, shift=config.random_shift, move=config.random_move)
        self.train_set = SkeletonBatches(dataset.splits["train"], index["train"], window, config.frame_stride)
        self.val_set = SkeletonBatches(dataset.splits["val"], index["val"], None, config.frame_stride)
        pin = self.device.type == "cuda"
        self.train_loader = Loader(self.train_set, config.batch_size, config.seed, True, self.loader_workers, pin)
        self.val_loader = Loader(self.val_set, config.eval_batch_size, 0, False, self.loader_workers, pin)
        # Channels-last weights match the channels-last activations the graph conv produces (no reorders).
        self.model = self._build_model(weights).to(self.device, memory_format=torch.channels_last)
        cuda = self.device.type == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = config.cudnn_benchmark
        # The compiled module shares the model's parameters; checkpoints keep the plain module's names. Not on
        # CPU: it measured no faster there (python -m bench.bench_gpu --device cpu) and torch 2.13's CPU backward
        # crashed on some shapes.
        self.train_model = torch.compile(self.model) if config.compile and cuda else self.model
        self.optimizer = self._build_optimizer()
        self.schedule = EpochSchedule(config)
        self.epoch = 0  # epochs finished
        self.history: list[dict] = []
        self.diverged = False

    def _build_model(self, weights: Path | None) -> STGCN:
        """From scratch, or the checkpoint's network with a new head sized to the subset (its layout and width must
        be the run's: a mismatch is an error naming the file)."""
        c = self.config
        if not c.pretrained:
            return STGCN(ModelConfig(num_classes=self.num_classes, width=c.width, dropout=c.dropout))
        path = Path(weights or c.pretrained)
        model = load_original_checkpoint(path, num_classes=self.num_classes)
        wanted = ModelConfig(num_classes=self.num_classes, width=c.width)
        for field in ("layout", "in_channels", "strategy", "temporal_kernel", "width"):
            if getattr(model.config, field) != getattr(wanted, field):
                raise CheckpointError(f"{path}: its network has {field} {getattr(model.config, field)!r}, this run's "
                                      f"has {getattr(wanted, field)!r}; fine-tune a checkpoint of the run's shape "
                                      f"(width {c.width})")
        return model

    def _freeze_backbone(self, frozen: bool) -> None:
        """During the first ``freeze_epochs`` only the new head learns: the backbone's weights get no gradient and
        its batch norms keep their statistics (eval mode), so the backbone is exactly the checkpoint's."""
        for name, parameter in self.model.named_parameters():
            parameter.requires_grad_(not frozen or name.startswith("fcn."))
        for module in self.model.modules():
            if frozen and isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.eval()

    def _build_optimizer(self) -> torch.optim.Optimizer:
        """The fused implementation: one kernel over all parameters instead of a few per parameter, the same
        update, several times faster on the CPU-sized network's hundred small tensors (``python -m bench.bench_model``).
        Not while a backbone is frozen: torch's fused SGD fails once some parameters have a momentum buffer and
        the ones unfrozen later do not; the multi-tensor (foreach) form takes that."""
        c, params = self.config, self.model.parameters()
        fused = {"fused": True} if not c.freeze_epochs else {"foreach": True}
        if c.optimizer == "sgd":
            return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov and c.momentum > 0,
                                   weight_decay=c.weight_decay, **fused)
        cls = torch.optim.Adam if c.optimizer == "adam" else torch.optim.AdamW
        return cls(params, lr=c.lr, betas=(c.beta1, c.beta2), weight_decay=c.weight_decay, **fused)

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
        train, trained = self._train(epoch)
        train_time = time.perf_counter() - start
        validated = not self.diverged and self.validates(epoch + 1)
        val = self._evaluate() if validated else {key: math.nan for key in VALIDATION_METRICS}
        if validated:
            self.schedule.observe(epoch, val["val_loss"])
        metrics = {"epoch": epoch + 1, **train, **val, "epoch_lr": lr, "epoch_time_s": time.perf_counter() - start,
                   "clips_per_s": trained / train_time if train_time > 0 else math.nan,
                   "diverged": self.diverged, "train_clips": len(self.train_set), "val_clips": len(self.val_set),
                   "num_classes": self.num_classes}
        self.history.append(metrics)
        self.epoch += 1
        return metrics

    def validates(self, epoch: int) -> bool:
        """Whether the validation set is scored after 1-based ``epoch``. Skipping it changes nothing else: it draws no
        random numbers, so the training is the same whichever epochs are validated."""
        c = self.config
        return (epoch % c.eval_interval == 0 or epoch == c.epochs or epoch in self.validated_after
                or c.scheduler == "plateau")

    def _train(self, epoch: int) -> tuple[dict, int]:
        """Sums stay on the device and are read every DIVERGENCE_CHECK_STEPS steps and at the end: reading a CUDA
        value each step would make the CPU wait for the GPU every step."""
        self.model.train()
        if self.config.pretrained:
            self._freeze_backbone(epoch < self.config.freeze_epochs)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        seen = 0
        for step, (x, y) in enumerate(self.train_loader.epoch(epoch), start=1):
            x, y = self._to_device(x), y.to(self.device, non_blocking=True)
            with self._autocast():
                logits = self.train_model(x)
                loss = F.cross_entropy(logits.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            if step % DIVERGENCE_CHECK_STEPS == 0 and not torch.isfinite(loss_sum):
                break
        if not torch.isfinite(loss_sum):  # NaN or inf anywhere in the epoch stays in the sum
            self.diverged = True
            return {"train_loss": math.nan, "train_top1": math.nan}, seen
        return {"train_loss": loss_sum.item() / seen, "train_top1": correct.item() / seen}, seen

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True)

    @torch.no_grad()
    def _evaluate(self) -> dict:
        self.model.eval()
        loss_sum, top5, forward_s = 0.0, 0, 0.0
        predicted, truth = [], []
        k = min(5, self.num_classes)
        for x, y in self.val_loader.epoch(0):
            x, y = self._to_device(x), y.to(self.device)
            start = time.perf_counter()
            with self._autocast():
                logits = self.model(x).float()
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            forward_s += time.perf_counter() - start
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            best = logits.topk(k, dim=1).indices
            top5 += (best == y[:, None]).any(dim=1).sum().item()
            predicted.append(best[:, 0].cpu())
            truth.append(y.cpu())
        predicted, truth = torch.cat(predicted), torch.cat(truth)
        seen = len(truth)
        return {"val_loss": loss_sum / seen, "val_top1": (predicted == truth).sum().item() / seen,
                "val_top5": top5 / seen, "inference_ms_per_clip": 1000.0 * forward_s / seen,
                **self._motion_protocol(predicted, truth)}

    def _motion_protocol(self, predicted: torch.Tensor, truth: torch.Tensor) -> dict:
        """Top-1 and mean class accuracy over the motion classes' validation clips, predictions over every class
        the model was trained on (the paper's Kinetics-Motion protocol)."""
        if self.motion_labels is None:
            return {"motion_top1": math.nan, "motion_mean_class": math.nan}
        on_motion = torch.isin(truth, self.motion_labels)
        correct = (predicted == truth)[on_motion].double()
        per_class = [correct[truth[on_motion] == c].mean() for c in self.motion_labels if (truth[on_motion] == c).any()]
        return {"motion_top1": correct.mean().item(), "motion_mean_class": torch.stack(per_class).mean().item()}

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
        check_same_config(state, self.config)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.epoch, self.history, self.diverged = state["epoch"], list(state["history"]), state["diverged"]
        torch.set_rng_state(state["torch_rng"])
