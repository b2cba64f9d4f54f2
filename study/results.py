"""The study's result tables, typed and written during the study.

``epochs.parquet/`` and ``trials.parquet/`` are Parquet datasets: one file per trial inside each, replaced
atomically whenever that trial reports. ``pandas.read_parquet(study_dir / "epochs.parquet")`` reads the whole
table. One file per trial keeps the driver's cost per result constant (a single table rewritten on every
result would grow quadratically over a study) and a crash can only ever lose the result being written.
The schemas are explicit so every file of a dataset has the same column types, whatever a trial's values.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from study.config import FIELD_TYPES, TrainConfig
from study.files import atomic_path

EPOCHS = "epochs.parquet"
TRIALS = "trials.parquet"

METRIC_TYPES = {"train_loss": pa.float64(), "train_top1": pa.float64(), "val_loss": pa.float64(),
                "val_top1": pa.float64(), "val_top5": pa.float64(), "inference_ms_per_clip": pa.float64(),
                "epoch_lr": pa.float64(), "epoch_time_s": pa.float64(), "clips_per_s": pa.float64(), "diverged": pa.bool_()}


def _arrow_type(python_type: str) -> pa.DataType:
    if python_type.startswith("tuple"):
        return pa.list_(pa.int64())
    for prefix, arrow in (("bool", pa.bool_()), ("int", pa.int64()), ("float", pa.float64()), ("str", pa.string())):
        if python_type.startswith(prefix):
            return arrow
    raise TypeError(f"no Parquet type for config field type {python_type}")


CONFIG_SCHEMA = [pa.field(name, _arrow_type(kind)) for name, kind in FIELD_TYPES.items() if name != "subset"]
IDENTITY_SCHEMA = [pa.field("study", pa.string()), pa.field("subset", pa.string()), pa.field("trial_id", pa.string()),
                   pa.field("experiment_id", pa.int64()), pa.field("folder", pa.string())]
PROVENANCE_SCHEMA = [pa.field("data_source", pa.string()), pa.field("model_variant", pa.string())]

EPOCH_SCHEMA = pa.schema(
    IDENTITY_SCHEMA + [pa.field("epoch", pa.int64())] + [pa.field(k, t) for k, t in METRIC_TYPES.items()]
    + CONFIG_SCHEMA + PROVENANCE_SCHEMA + [pa.field("node", pa.string()), pa.field("node_id", pa.string()),
                                           pa.field("recorded_at", pa.float64())])

TRIAL_SCHEMA = pa.schema(
    IDENTITY_SCHEMA + [pa.field("index", pa.int64())] + CONFIG_SCHEMA + PROVENANCE_SCHEMA + [
        pa.field("status", pa.string()), pa.field("stop_reason", pa.string()),
        pa.field("epochs_run", pa.int64()), pa.field("epochs_planned", pa.int64()),
        pa.field("best_epoch", pa.int64()), pa.field("best_val_top1", pa.float64()),
        pa.field("best_val_top5", pa.float64()), pa.field("train_top1_at_best", pa.float64()),
        pa.field("last_train_loss", pa.float64()), pa.field("last_train_top1", pa.float64()),
        pa.field("last_val_loss", pa.float64()), pa.field("last_val_top1", pa.float64()),
        pa.field("last_val_top5", pa.float64()), pa.field("wall_time_s", pa.float64()),
        pa.field("retries", pa.int64()), pa.field("error", pa.string()), pa.field("repeat_of", pa.string()),
        pa.field("sampled", pa.string()),
        pa.field("started_at", pa.float64()), pa.field("updated_at", pa.float64())])


def _config_columns(config: TrainConfig) -> dict:
    values = config.applied_dict()
    values.pop("subset")
    return values


@dataclass
class TrialRecord:
    """What the driver knows of one trial: its identity, config and every epoch it reported."""
    study: str
    subset: str
    trial_id: str
    index: int
    experiment_id: int
    config: TrainConfig
    data_source: str
    folder: str | None = None  # the experiment folder's name, known from the trial's first report
    repeat_of: str | None = None  # for a seed repeat: the search trial whose hyperparameters it re-runs
    sampled: dict = field(default_factory=dict)  # what the search proposed (JSON in the table)
    epochs: dict[int, dict] = field(default_factory=dict)
    status: str = "running"
    stop_reason: str = "running"
    retries: int = 0
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def identity(self) -> dict:
        return {"study": self.study, "subset": self.subset, "trial_id": self.trial_id,
                "experiment_id": self.experiment_id, "folder": self.folder}

    def provenance(self) -> dict:
        return {"data_source": self.data_source, "model_variant": self.config.model_variant}

    def add_epoch(self, metrics: dict) -> None:
        """Keyed by epoch: an epoch re-run after a restore replaces its earlier row instead of duplicating it."""
        self.folder = metrics.get("folder", self.folder)
        row = {**self.identity(), "epoch": int(metrics["epoch"]), **{k: metrics[k] for k in METRIC_TYPES},
               **_config_columns(self.config), **self.provenance(), "node": metrics.get("node"),
               "node_id": metrics.get("node_id"),
               "recorded_at": time.time()}
        self.epochs[row["epoch"]] = row
        self.updated_at = row["recorded_at"]

    def finish(self, stop_reason: str, error: str | None = None) -> None:
        self.status = "error" if stop_reason == "errored" else "terminated"
        self.stop_reason, self.error, self.updated_at = stop_reason, error, time.time()

    def summary(self) -> dict:
        rows = [self.epochs[e] for e in sorted(self.epochs)]
        scored = [r for r in rows if not math.isnan(r["val_top1"])]
        best = max(scored, key=lambda r: r["val_top1"]) if scored else None
        last = rows[-1] if rows else {}
        return {**self.identity(), "index": self.index, **_config_columns(self.config), **self.provenance(),
                "status": self.status, "stop_reason": self.stop_reason, "epochs_run": len(rows),
                "epochs_planned": self.config.epochs, "best_epoch": best["epoch"] if best else None,
                "best_val_top1": best["val_top1"] if best else math.nan,
                "best_val_top5": best["val_top5"] if best else math.nan,
                "train_top1_at_best": best["train_top1"] if best else math.nan,
                **{f"last_{k}": last.get(k, math.nan) for k in ("train_loss", "train_top1", "val_loss", "val_top1",
                                                                  "val_top5")},
                "wall_time_s": sum(r["epoch_time_s"] for r in rows if not math.isnan(r["epoch_time_s"])),
                "retries": self.retries, "error": self.error, "repeat_of": self.repeat_of,
                "sampled": json.dumps(self.sampled, sort_keys=True, default=str), "started_at": self.started_at,
                "updated_at": self.updated_at}


def _write(path: Path, rows: Iterable[dict], schema: pa.Schema) -> None:
    table = pa.Table.from_pylist(list(rows), schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def part_name(record: TrialRecord) -> str:
    return f"{record.subset}__{record.trial_id}.parquet"


def write_record(study_dir: Path, record: TrialRecord) -> tuple[Path, Path]:
    """Replace this trial's file in both datasets (its epochs, then its one summary row); returns both paths."""
    paths = study_dir / EPOCHS / part_name(record), study_dir / TRIALS / part_name(record)
    _write(paths[0], (record.epochs[e] for e in sorted(record.epochs)), EPOCH_SCHEMA)
    _write(paths[1], [record.summary()], TRIAL_SCHEMA)
    return paths


def reload(study_dir: Path, record: TrialRecord) -> None:
    """After a driver restart: keep what this trial already recorded (epochs, folder, retries, start time)."""
    part = part_name(record)
    if (study_dir / EPOCHS / part).is_file():
        rows = pq.read_table(study_dir / EPOCHS / part, schema=EPOCH_SCHEMA).to_pylist()
        record.epochs.update({row["epoch"]: row for row in rows})
    if (study_dir / TRIALS / part).is_file():
        row = pq.read_table(study_dir / TRIALS / part, schema=TRIAL_SCHEMA).to_pylist()[0]
        record.folder, record.retries, record.started_at = row["folder"], row["retries"], row["started_at"]


def read_table(study_dir: Path, name: str) -> pa.Table:
    """A whole dataset (epochs or trials); empty with the right columns when no trial has written yet."""
    schema = EPOCH_SCHEMA if name == EPOCHS else TRIAL_SCHEMA
    path = Path(study_dir) / name
    if not path.is_dir() or not any(path.glob("*.parquet")):
        return schema.empty_table()
    return pq.read_table(path, schema=schema)
