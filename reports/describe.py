"""Words for a trial, from its row in trials.parquet: optimizer, scheduler, data and pre-training as a researcher
writes them, and the Observations and Notes the spreadsheet used to get by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

OVERFIT_GAP = 0.25  # train top-1 this far above val top-1 (and train above 50%) is called overfitting


def present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def optimizer_text(row: pd.Series) -> str:
    name = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}.get(row["optimizer"], str(row["optimizer"]))
    if row["optimizer"] == "sgd" and present(row.get("momentum")):
        return f"{name} (momentum {row['momentum']:.3g}{', nesterov' if row.get('nesterov') else ''})"
    if present(row.get("beta1")):
        return f"{name} (betas {row['beta1']:.3g}, {row['beta2']:.3g})"
    return name


def scheduler_text(row: pd.Series) -> str:
    kind = row["scheduler"]
    if kind == "step" and row.get("milestones") is not None:
        text = f"step (milestones {'/'.join(str(int(m)) for m in row['milestones'])}, gamma {row['gamma']:.3g})"
    elif kind == "plateau":
        text = f"plateau (patience {int(row['plateau_patience'])}, factor {row['plateau_factor']:.3g})"
    else:
        text = str(kind)
    warmup = row.get("warmup_epochs")
    return text + (f" + warmup {int(warmup)}" if present(warmup) and warmup > 0 else "")


def dataset_text(row: pd.Series) -> str:
    """The subset, how its training set was sampled and how many clips that was, and where the data came from."""
    parts = [str(row["subset"])]
    if present(row.get("fraction_per_class")):
        parts.append(f"{100 * row['fraction_per_class']:.0f}% per class")
    if present(row.get("cap_per_class")):
        parts.append(f"at most {int(row['cap_per_class'])} per class")
    if len(parts) > 1:
        parts += [str(row.get("sampling") or "stratified"), f"seed {int(row['seed'])}"]
    if present(row.get("train_clips")):
        parts.append(f"{int(row['train_clips'])} training clips")
    return ", ".join(parts) + (" (synthetic)" if row.get("data_source") == "synthetic" else "")


def pretrained_text(row: pd.Series) -> str:
    """'no', or the checkpoint's file name and the start of its sha256, so a result names the exact weights."""
    path = row.get("pretrained")
    if not isinstance(path, str):
        return "no"
    digest = row.get("pretrained_sha256")
    return f"{Path(path).name} (sha256 {digest[:12]})" if isinstance(digest, str) else Path(path).name


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def notes(row: pd.Series, best_at: int | None, could_be_best: bool, seed_sd: float | None, verdict: str | None,
          budget: int | None) -> str:
    """Observations from the data: how it ended, over/underfitting, and the page's own words for it at the headline
    ``budget``: its verdict against chance (``verdict``, Holm over the page's trials), whether it is the best there
    (``best_at``: that budget, when it is), whether it could be the best config (in the set that holds the truly best
    with 95% probability, which only the measured seed noise ``seed_sd`` can give)."""
    out = []
    reason, run = row["stop_reason"], int(row["epochs_run"])
    planned = int(row["epochs_planned"]) if present(row.get("epochs_planned")) else None
    if reason == "diverged":
        out.append(f"diverged at epoch {run} (loss NaN)")
    elif reason == "stopped_by_asha":
        out.append(f"stopped by ASHA at epoch {run} of {planned}: its scores are from a smaller budget")
    elif reason == "errored":
        out.append(f"errored after {run} epoch(s): {row.get('error') or 'no message'}")
    elif reason in ("running", "interrupted"):
        out.append(f"{'still running' if reason == 'running' else 'interrupted'} ({run} of {planned} epochs)")
    if isinstance(row.get("repeat_of"), str):
        out.append(f"seed repeat (seed {int(row['seed'])}) of trial {row['repeat_of']}")
    if int(row.get("retries") or 0):
        out.append(f"retried {int(row['retries'])}x from its checkpoint")
    train, score = row.get("last_train_top1"), row.get("last_val_top1")
    if present(train) and present(score) and train > 0.5 and train - score > OVERFIT_GAP:
        out.append(f"overfitting: train {_pct(train)} vs test {_pct(score)}")
    if verdict == "at chance":
        out.append(f"at chance at epoch {budget}: not shown above chance (each trial's binomial test, Holm over the "
                   "page's trials)")
    elif verdict == "learned":
        out.append(f"learned by epoch {budget} (above chance, Holm over the page's trials)")
    if best_at is not None:
        out.append(f"best at epoch {best_at} (a single run: the highest of many, biased upward)")
    if could_be_best and seed_sd is not None:
        out.append(f"could be the best config (95% set, seed noise {100 * seed_sd:.1f} points)")
    return "; ".join(out)
