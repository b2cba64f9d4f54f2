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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from common.files import atomic_path
from training.config import FIELD_TYPES, TrainConfig, field_type

# The study directory's files: written by the study (study/), read by the report (reports/).
MANIFEST = "study.json"  # what was asked, data, versions, status
SPACE_COPY = "space.yaml"  # the search space as it was when the study started
OPTUNA = "optuna"  # the Optuna studies: optuna/<subset>.journal
EXPERIMENTS = "experiments"  # one folder per trial (training.folder)
EPOCHS = "epochs.parquet"
TRIALS = "trials.parquet"
# Stop reasons of a trial that is over (the others: running, and interrupted: stopped short by Ctrl-C, resumable).
ENDED = ("completed", "stopped_by_asha", "diverged", "errored")

METRIC_TYPES = {"train_loss": pa.float64(), "train_top1": pa.float64(), "val_loss": pa.float64(),
                "val_top1": pa.float64(), "val_top5": pa.float64(), "inference_ms_per_clip": pa.float64(),
                "epoch_lr": pa.float64(), "epoch_time_s": pa.float64(), "clips_per_s": pa.float64(), "diverged": pa.bool_(),
                # the paper's Kinetics-Motion protocol: a model trained on more classes, scored on the motion classes
                "motion_top1": pa.float64(), "motion_mean_class": pa.float64(),
                "train_clips": pa.int64(), "val_clips": pa.int64(), "num_classes": pa.int64()}


# Columns of a trial's row taken from its last epoch (last_<metric>): an ASHA-stopped trial's are from its last rung.
LAST_METRICS = ("train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "motion_top1", "motion_mean_class")


def optuna_journal(study_dir: Path, subset: str) -> Path:
    """The journal of the subset's Optuna study, named after the subset."""
    return Path(study_dir) / OPTUNA / f"{subset}.journal"


LABEL = pa.dictionary(pa.int32(), pa.string())  # a column of few repeated values: pandas reads it as a category
WHEN = pa.timestamp("us", tz="UTC")


def _arrow_type(name: str) -> pa.DataType:
    kind, _ = field_type(name)
    arrow = {tuple: pa.list_(pa.int64()), bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: LABEL}
    return arrow[kind]


def _now() -> datetime:
    return datetime.now(timezone.utc)


CONFIG_SCHEMA = [pa.field(name, _arrow_type(name)) for name in FIELD_TYPES if name != "subset"]
IDENTITY_SCHEMA = [pa.field("study", LABEL), pa.field("subset", LABEL), pa.field("trial_id", pa.string()),
                   pa.field("experiment_id", pa.int64()), pa.field("folder", pa.string())]
PROVENANCE_SCHEMA = [pa.field("data_source", LABEL), pa.field("model_variant", LABEL)]


def _for_pandas(schema: pa.Schema) -> pa.Schema:
    """The schema with the pandas metadata that makes ``pandas.read_parquet`` give integer columns with gaps as
    nullable integers (Int64) rather than floats; labels come back as categories and times as UTC timestamps."""
    empty = schema.empty_table().to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    return schema.with_metadata(pa.Schema.from_pandas(empty, preserve_index=False).metadata)


EPOCH_SCHEMA = _for_pandas(pa.schema(
    IDENTITY_SCHEMA + [pa.field("epoch", pa.int64())] + [pa.field(k, t) for k, t in METRIC_TYPES.items()]
    + CONFIG_SCHEMA + PROVENANCE_SCHEMA + [pa.field("node", pa.string()), pa.field("node_id", pa.string()),
                                           pa.field("recorded_at", WHEN)]))

TRIAL_SCHEMA = _for_pandas(pa.schema(
    IDENTITY_SCHEMA + [pa.field("index", pa.int64())] + CONFIG_SCHEMA + PROVENANCE_SCHEMA + [
        pa.field("status", LABEL), pa.field("stop_reason", LABEL),
        pa.field("epochs_run", pa.int64()), pa.field("epochs_planned", pa.int64()),
        pa.field("best_epoch", pa.int64()), pa.field("best_val_top1", pa.float64()),
        pa.field("best_val_top5", pa.float64()), pa.field("train_top1_at_best", pa.float64()),
        pa.field("last_train_loss", pa.float64()), pa.field("last_train_top1", pa.float64()),
        pa.field("last_val_loss", pa.float64()), pa.field("last_val_top1", pa.float64()),
        pa.field("last_val_top5", pa.float64()), pa.field("last_motion_top1", pa.float64()),
        pa.field("last_motion_mean_class", pa.float64()), pa.field("train_clips", pa.int64()),
        pa.field("val_clips", pa.int64()), pa.field("num_classes", pa.int64()), pa.field("wall_time_s", pa.float64()),
        pa.field("retries", pa.int64()), pa.field("error", pa.string()), pa.field("repeat_of", pa.string()),
        pa.field("optuna_number", pa.int64()), pa.field("sampled_by", LABEL),
        pa.field("pretrained_sha256", pa.string()),
        pa.field("sampled", pa.string()),
        pa.field("started_at", WHEN), pa.field("updated_at", WHEN)]))


def _config_columns(config: TrainConfig | None) -> dict:
    """The config's fields (those it does not use empty); all empty for a sample the config refused."""
    if config is None:
        return {f.name: None for f in CONFIG_SCHEMA}
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
    config: TrainConfig | None  # None: the sample is not a valid config (``error`` says why); the trial errors
    data_source: str
    folder: str | None = None  # the experiment folder's name, known from the trial's first report
    repeat_of: str | None = None  # for a seed repeat: the search trial whose hyperparameters it re-runs
    optuna_number: int | None = None  # the Optuna trial that proposed it (none for seed repeats)
    sampled_by: str | None = None  # paper recipe, random start-up, tpe, qmc, random; None for seed repeats
    pretrained_sha256: str | None = None  # of the checkpoint a fine-tuned trial started from
    sampled: dict = field(default_factory=dict)  # what the search proposed (JSON in the table)
    epochs: dict[int, dict] = field(default_factory=dict)
    status: str = "running"
    stop_reason: str = "running"
    retries: int = 0
    error: str | None = None
    started_at: datetime = field(default_factory=_now)
    updated_at: datetime = field(default_factory=_now)

    @property
    def ended(self) -> bool:
        return self.stop_reason in ENDED

    def identity(self) -> dict:
        return {"study": self.study, "subset": self.subset, "trial_id": self.trial_id,
                "experiment_id": self.experiment_id, "folder": self.folder}

    def provenance(self) -> dict:
        return {"data_source": self.data_source, "model_variant": self.config.model_variant if self.config else None}

    def add_epoch(self, metrics: dict) -> None:
        """Keyed by epoch: an epoch re-run after a restore replaces its earlier row instead of duplicating it."""
        self.folder = metrics.get("folder", self.folder)
        row = {**self.identity(), "epoch": int(metrics["epoch"]), **{k: metrics[k] for k in METRIC_TYPES},
               **_config_columns(self.config), **self.provenance(), "node": metrics.get("node"),
               "node_id": metrics.get("node_id"),
               "recorded_at": _now()}
        self.epochs[row["epoch"]] = row
        self.updated_at = row["recorded_at"]

    def finish(self, stop_reason: str, error: str | None = None) -> None:
        self.status = "error" if stop_reason == "errored" else "terminated"
        self.stop_reason, self.error, self.updated_at = stop_reason, error, _now()

    def summary(self) -> dict:
        rows = [self.epochs[e] for e in sorted(self.epochs)]
        scored = [r for r in rows if not math.isnan(r["val_top1"])]
        best = max(scored, key=lambda r: r["val_top1"]) if scored else None
        last = rows[-1] if rows else {}
        return {**self.identity(), "index": self.index, **_config_columns(self.config), **self.provenance(),
                "status": self.status, "stop_reason": self.stop_reason, "epochs_run": len(rows),
                "epochs_planned": self.config.epochs if self.config else None, "best_epoch": best["epoch"] if best else None,
                "best_val_top1": best["val_top1"] if best else math.nan,
                "best_val_top5": best["val_top5"] if best else math.nan,
                "train_top1_at_best": best["train_top1"] if best else math.nan,
                **{f"last_{k}": last.get(k, math.nan) for k in LAST_METRICS},
                **{k: last.get(k) for k in ("train_clips", "val_clips", "num_classes")},
                "wall_time_s": sum(r["epoch_time_s"] for r in rows if not math.isnan(r["epoch_time_s"])),
                "retries": self.retries, "error": self.error, "repeat_of": self.repeat_of,
                "optuna_number": self.optuna_number, "sampled_by": self.sampled_by,
                "pretrained_sha256": self.pretrained_sha256,
                "sampled": json.dumps(self.sampled, sort_keys=True, default=str), "started_at": self.started_at,
                "updated_at": self.updated_at}


def _write(path: Path, rows: Iterable[dict], schema: pa.Schema) -> None:
    table = pa.Table.from_pylist(list(rows), schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def part_name(subset: str, trial_id: str) -> str:
    """A trial's file in each of the two datasets."""
    return f"{subset}__{trial_id}.parquet"


def write_record(study_dir: Path, record: TrialRecord) -> tuple[Path, Path]:
    """Replace this trial's file in both datasets (its epochs, then its one summary row); returns both paths."""
    part = part_name(record.subset, record.trial_id)
    paths = study_dir / EPOCHS / part, study_dir / TRIALS / part
    _write(paths[0], (record.epochs[e] for e in sorted(record.epochs)), EPOCH_SCHEMA)
    _write(paths[1], [record.summary()], TRIAL_SCHEMA)
    return paths


def forget(study_dir: Path, subset: str, trial_id: str) -> tuple[Path, Path]:
    """Remove a trial's rows from both datasets (a trial the resumed experiment does not know); the two paths."""
    paths = tuple(Path(study_dir) / name / part_name(subset, trial_id) for name in (EPOCHS, TRIALS))
    for path in paths:
        path.unlink(missing_ok=True)
    return paths


def recorded(study_dir: Path, subset: str, trial_id: str) -> tuple[dict | None, list[dict]]:
    """A trial's row in trials.parquet and its rows in epochs.parquet, epoch by epoch (None and [] when it has
    written none)."""
    part = part_name(subset, trial_id)
    summary = study_dir / TRIALS / part
    epochs = study_dir / EPOCHS / part
    return (pq.read_table(summary, schema=TRIAL_SCHEMA).to_pylist()[0] if summary.is_file() else None,
            sorted(pq.read_table(epochs, schema=EPOCH_SCHEMA).to_pylist(), key=lambda row: row["epoch"])
            if epochs.is_file() else [])


def reload(study_dir: Path, record: TrialRecord) -> None:
    """After a driver restart: keep what this trial already recorded (epochs, folder, retries, start time, and how
    it ended if it did: a trial can end after Tune last saved its state, which then still calls it running)."""
    row, epochs = recorded(study_dir, record.subset, record.trial_id)
    record.epochs.update({epoch["epoch"]: epoch for epoch in epochs})
    if row is not None:
        record.folder, record.retries, record.started_at = row["folder"], row["retries"], row["started_at"]
        if row["stop_reason"] in ENDED:
            record.status, record.stop_reason, record.error = row["status"], row["stop_reason"], row["error"]
            record.updated_at = row["updated_at"]


def read_table(study_dir: Path, name: str, skipped: list[str] | None = None) -> pa.Table:
    """A whole dataset (epochs or trials) with its declared schema; empty with the right columns when no trial has
    written yet. An unreadable part file raises, or with ``skipped`` given is left out and named there."""
    schema = EPOCH_SCHEMA if name == EPOCHS else TRIAL_SCHEMA
    parts = sorted((Path(study_dir) / name).glob("*.parquet"))
    tables = []
    for part in parts:
        try:
            tables.append(pq.read_table(part, schema=schema))
        except (pa.ArrowInvalid, OSError) as exc:
            if skipped is None:
                raise
            skipped.append(f"{name}/{part.name}: unreadable, skipped ({exc})")
    return pa.concat_tables(tables) if tables else schema.empty_table()


def read_frame(study_dir: Path, name: str, skipped: list[str] | None = None) -> pd.DataFrame:
    """A whole dataset as the project's own analyses read it (``read_table``'s errors): labels as text, integers
    with gaps as floats (NaN); times stay UTC timestamps."""
    table = read_table(study_dir, name, skipped)
    plain = pa.schema([pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                       for f in table.schema])
    return table.cast(plain).to_pandas(ignore_metadata=True)
