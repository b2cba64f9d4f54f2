"""Words for a trial, from its row in trials.parquet: optimizer and scheduler as a researcher writes them,
and the Observations and Notes the spreadsheet used to get by hand."""

from __future__ import annotations

import math

import pandas as pd

OVERFIT_GAP = 0.25  # train top-1 this far above val top-1 (and train above 50%) is called overfitting


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def optimizer_text(row: pd.Series) -> str:
    name = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}.get(row["optimizer"], str(row["optimizer"]))
    if row["optimizer"] == "sgd" and _present(row.get("momentum")):
        return f"{name} (momentum {row['momentum']:.3g}{', nesterov' if row.get('nesterov') else ''})"
    if _present(row.get("beta1")):
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
    return text + (f" + warmup {int(warmup)}" if _present(warmup) and warmup > 0 else "")


def dataset_text(row: pd.Series) -> str:
    return f"{row['subset']} (synthetic)" if row.get("data_source") == "synthetic" else str(row["subset"])


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def notes(row: pd.Series, best_of_subset: bool, noise: float | None, best_score: float | None) -> str:
    """Observations from the data: how it ended, over/underfitting, where it stands in the study."""
    out = []
    reason, run, planned = row["stop_reason"], int(row["epochs_run"]), int(row["epochs_planned"])
    if reason == "diverged":
        out.append(f"diverged at epoch {run} (loss NaN)")
    elif reason == "stopped_by_asha":
        out.append(f"stopped by ASHA at epoch {run} of {planned}")
    elif reason == "errored":
        out.append(f"errored after {run} epoch(s): {row.get('error') or 'no message'}")
    elif reason == "running":
        out.append(f"still running ({run} of {planned} epochs)")
    if isinstance(row.get("repeat_of"), str):
        out.append(f"seed repeat (seed {int(row['seed'])}) of trial {row['repeat_of']}")
    if int(row.get("retries") or 0):
        out.append(f"retried {int(row['retries'])}x from its checkpoint")
    train, val = row.get("train_top1_at_best"), row.get("best_val_top1")
    if _present(train) and _present(val):
        if train > 0.5 and train - val > OVERFIT_GAP:
            out.append(f"overfitting: train {_pct(train)} vs test {_pct(val)}")
        chance = 1.0 / row["num_classes"] if _present(row.get("num_classes")) else None
        if chance and val < 1.5 * chance:
            out.append(f"near chance ({_pct(chance)})")
    if best_of_subset:
        out.append("best of study")
    elif noise is not None and _present(val) and best_score is not None and best_score - val <= noise:
        out.append(f"within the seed noise of the best ({_pct(best_score - val)} below, noise {_pct(noise)})")
    return "; ".join(out)
