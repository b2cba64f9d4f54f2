"""Studies drawn from a known truth, in the tables' schema, for measuring how often each verdict of the report is
wrong (bench/bench_verdicts.py, tests/test_verdicts.py).

What a real study on the CPU profile shows, kept here: a chance floor (a config that does not learn scores the
validation clips' binomial spread around 1/K, nothing more); a working window of learning rates (too small learns
nothing in the budget, too large thrashes or diverges to NaN), whose edges are not a bell; seed noise that grows as a
trial learns (8 points at the last epoch on the synthetic set, none at chance); learning curves that rise over the
epochs; and ASHA's selection, Ray's asynchronous rule (a trial stops at a rung when its metric is below the
(1 - 1/rf) quantile of the results recorded there before it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

SEED_SD = 0.08  # the last epoch's seed noise on the synthetic set (docs/report.md, "Seed noise")


@dataclass(frozen=True)
class Truth:
    """One subset's response: final expected val top-1 of a config."""
    classes: int = 30
    val_clips: int = 180
    top: float = 0.60  # a fully learning config's final accuracy (chance for a subset that learns nothing)
    window: tuple[float, float] | None = (-2.5, -1.3)  # log10 lr where learning happens; None: lr has no effect
    diverge_above: float | None = -0.7  # log10 lr from which the loss goes NaN at epoch 1
    adam_gain: float = 0.0  # points an Adam trial scores above SGD at the same lr
    alpha: float = 0.0  # the window moves by alpha * log10(batch / 256)
    seed_sd: float = SEED_SD
    data_slope: float = 0.0  # points per doubling of training clips per class

    @property
    def chance(self) -> float:
        return 1.0 / self.classes

    def learnability(self, log_lr: np.ndarray, log_batch: np.ndarray) -> np.ndarray:
        """0 (learns nothing) to 1, from a logistic rise and a steeper logistic fall across the window."""
        if self.window is None:
            return np.ones_like(log_lr)
        low, high = self.window
        x = log_lr - self.alpha * log_batch
        return 1 / (1 + np.exp(-(x - low) / 0.12)) / (1 + np.exp((x - high) / 0.08))


@dataclass(frozen=True)
class Design:
    trials: int = 20  # per subset
    epochs: int = 8
    grace: int = 2
    reduction: int = 3  # ASHA's reduction factor; 0: no early stopping
    lr_range: tuple[float, float] = (-4.0, -0.5)  # log10
    optimizers: tuple[str, ...] = ("sgd",)
    batches: tuple[int, ...] = (8,)
    clip_range: tuple[float, float] | None = None  # training clips per class, log2 range, when the data budget varies
    repeats: int = 0  # seed repeats of each subset's best configs ...
    seeds: int = 0  # ... this many each
    subsets: dict[str, Truth] = field(default_factory=lambda: {"kinetics-motion": Truth()})

    @property
    def levels(self) -> list[int]:
        rungs = []
        while self.reduction and self.grace * self.reduction ** len(rungs) < self.epochs:
            rungs.append(self.grace * self.reduction ** len(rungs))
        return [*rungs, self.epochs]

    @property
    def parameters(self) -> list[str]:
        varied = ["lr", "weight_decay"]
        varied += ["optimizer"] if len(self.optimizers) > 1 else []
        varied += ["batch_size"] if len(self.batches) > 1 else []
        varied += ["cap_per_class"] if self.clip_range else []
        return varied


def learning_curve(epochs: int) -> np.ndarray:
    """Share of its final accuracy a trial has at each epoch 1..E (a third of it by E/3, all at E)."""
    e = np.arange(1, epochs + 1)
    return (1 - np.exp(-e / (epochs / 3))) / (1 - math.exp(-3))


def simulate(design: Design, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(trials, epochs, truth): a study's two tables as the report reads them, and per trial id its true expected
    score at every budget (what an interval should cover, which trials truly learn)."""
    rng = np.random.default_rng(seed)
    trials, epochs, truth = [], [], {}
    configs = _configs(design, rng)  # the same configs on every subset, as a seeded sampler gives them
    for position, (subset, t) in enumerate(design.subsets.items()):
        rungs: dict[int, list[float]] = {}
        for i, config in enumerate(configs):
            rows, expected = _trial(design, t, config, rng, rungs)
            trial_id = f"{subset}-{i}"
            truth[trial_id] = expected
            trials.append(_trial_row(design, t, subset, trial_id, i, position, config, rows))
            epochs += [{"subset": subset, "trial_id": trial_id, "epoch": e, "val_top1": v} for e, v in rows]
        search = [r for r in trials if r["subset"] == subset and r["stop_reason"] == "completed"]
        best = sorted(search, key=lambda r: -r["last_val_top1"])[:design.repeats]
        for r in best:
            for k in range(design.seeds):
                config = configs[r["index"]]
                rows, _ = _trial(design, t, config, rng, None)
                trial_id = f"{r['trial_id']}-seed{k + 1}"
                trials.append({**_trial_row(design, t, subset, trial_id, 5000 + len(trials), position, config, rows),
                               "repeat_of": r["trial_id"], "seed": k + 1})
                epochs += [{"subset": subset, "trial_id": trial_id, "epoch": e, "val_top1": v} for e, v in rows]
    return pd.DataFrame(trials), pd.DataFrame(epochs), truth


def _configs(design: Design, rng: np.random.Generator) -> list[dict]:
    out = []
    for _ in range(design.trials):
        config = {"lr": 10 ** rng.uniform(*design.lr_range), "weight_decay": 10 ** rng.uniform(-6, -2),
                  "optimizer": str(rng.choice(design.optimizers)), "batch_size": int(rng.choice(design.batches))}
        if design.clip_range:
            config["cap_per_class"] = int(round(2 ** rng.uniform(*design.clip_range)))
        out.append(config)
    return out


def _trial(design: Design, t: Truth, config: dict, rng: np.random.Generator, rungs: dict | None):
    """One trial's (epoch, val top-1) rows, stopped by ASHA at a rung (``rungs``: the results recorded at each rung so
    far; None for a seed repeat, run to the end), and its expected score at every epoch."""
    log_lr, log_batch = math.log10(config["lr"]), math.log10(config["batch_size"] / 256)
    q = float(t.learnability(np.array([log_lr]), np.array([log_batch]))[0])
    gain = t.adam_gain if config["optimizer"] == "adam" else 0.0
    data = t.data_slope * math.log2(config["cap_per_class"] / 16) if "cap_per_class" in config else 0.0
    final = t.chance + max(0.0, (t.top - t.chance) * q + gain * q + data)
    sd = t.seed_sd * q if final > t.chance else 0.0  # seed noise only where the config learns
    own = float(np.clip(final + sd * rng.normal(), t.chance, 0.99))  # this seed's final accuracy
    if sd > 0:  # what an interval should cover: the config's expected score over seeds, floored at chance as `own` is
        d = (final - t.chance) / sd
        final = t.chance + (final - t.chance) * stats.norm.cdf(d) + sd * stats.norm.pdf(d)
    curve = learning_curve(design.epochs)
    expected = {e: t.chance + (final - t.chance) * curve[e - 1] for e in range(1, design.epochs + 1)}
    if t.diverge_above is not None and log_lr - t.alpha * log_batch > t.diverge_above:
        return [(1, math.nan)], {e: t.chance for e in expected}
    rows = []
    for e in range(1, design.epochs + 1):
        p = t.chance + (own - t.chance) * curve[e - 1]
        rows.append((e, rng.binomial(t.val_clips, p) / t.val_clips))
        if rungs is not None and e in design.levels[:-1]:
            metric = rows[-1][1] + 1e-6 * rng.normal()  # ASHA's metric (ties broken at random, as a loss would)
            recorded = rungs.setdefault(e, [])
            cutoff = np.quantile(recorded, 1 - 1 / design.reduction) if recorded else None
            recorded.append(metric)
            if cutoff is not None and metric < cutoff:
                break
    return rows, expected


def _trial_row(design: Design, t: Truth, subset: str, trial_id: str, index: int, position: int, config: dict,
               rows: list) -> dict:
    last_epoch, last = rows[-1]
    diverged = math.isnan(last)
    finished = last_epoch >= design.epochs
    scores = [v for _, v in rows if not math.isnan(v)]
    clips = config.get("cap_per_class", 24) * t.classes
    return {"subset": subset, "trial_id": trial_id, "index": index, "experiment_id": 10_000 * (position + 1) + index,
            **config, "scheduler": "step", "repeat_of": None, "seed": 0, "pretrained": None,
            "stop_reason": "diverged" if diverged else ("completed" if finished else "stopped_by_asha"),
            "last_val_top1": last, "best_val_top1": max(scores) if scores else math.nan, "last_val_top5": last,
            "last_motion_top1": math.nan, "last_motion_mean_class": math.nan,
            "epochs_run": last_epoch, "epochs_planned": design.epochs, "num_classes": t.classes,
            "val_clips": t.val_clips, "train_clips": clips, "sampled": json.dumps(config),
            "sampled_by": "random", "folder": trial_id, "data_source": "simulated", "model_variant": "simulated"}
