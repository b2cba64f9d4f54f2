"""A study's directory: created once, never written by another study, resumable.

    <storage>/<name>/
        study.json            what was asked (space, subsets, data, seed, budget, overrides) and when
        space.yaml            the search space file as it was when the study started
        <subset>/             Ray Tune's experiment (trial folders, checkpoints, searcher state)
        <subset>-seeds/       the seed repeats of the best configs (--repeats K --seeds N), when asked
        experiments/          one folder per trial, in the researchers' layout (study.experiment)
        epochs.parquet/       one row per trial and epoch (study.results)
        trials.parquet/       one row per trial
        optuna.journal        the Optuna studies (one per subset), loadable with optuna.load_study
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from study.files import write_json

MANIFEST = "study.json"
OPTUNA_JOURNAL = "optuna.journal"


class StudyDirError(ValueError):
    """The study directory cannot be used as asked (exists without --resume, nothing to resume, not a study)."""


@dataclass(frozen=True)
class StudyRequest:
    """What a study was asked to do; stored in study.json so --resume continues exactly this."""
    space: str
    subsets: tuple[str, ...]
    num_samples: int
    data: str
    profile: str
    seed: int
    cpus_per_trial: float
    gpus_per_trial: float
    max_concurrent: int
    max_failures: int
    overrides: dict = field(default_factory=dict)
    # A trial may start in the worker of a finished one (imports and data stay open, ~0.9 s saved per trial on the
    # CPU demo), but its actor then keeps the first trial's name in the dashboard; off by default.
    reuse_actors: bool = False
    early_stopping: bool = True  # ASHA; False runs every trial to its last epoch (the baseline ASHA is judged by)
    repeats: int = 0  # after the search: re-run the best `repeats` configs of each subset ...
    seeds: int = 0  # ... with this many other seeds, to measure the seed-noise floor

    def to_dict(self) -> dict:
        values = asdict(self)
        values["subsets"] = list(self.subsets)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> StudyRequest:
        return cls(**{**values, "subsets": tuple(values["subsets"])})


def default_name(space: str) -> str:
    return f"{space}-{time.strftime('%Y%m%d-%H%M%S')}"


def latest_of(storage: Path, space: str) -> Path:
    """The most recently started study of ``space`` in ``storage``, for --resume without --name."""
    candidates = sorted((p for p in storage.glob(f"{space}-*") if (p / MANIFEST).is_file()),
                        key=lambda p: json.loads((p / MANIFEST).read_text())["created_at"])
    if not candidates:
        raise StudyDirError(f"{storage}: no study of space '{space}' to resume; start one without --resume, "
                            "or pass --name")
    return candidates[-1]


def create(root: Path, request: StudyRequest, space_file: Path) -> None:
    """A new study directory; refuses an existing one so two studies never write into each other."""
    if root.exists() and any(root.iterdir()):
        raise StudyDirError(f"{root}: a study of this name already exists; pass --resume to continue it, or "
                            "choose another --name")
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(space_file, root / "space.yaml")
    write_json(root / MANIFEST, {"name": root.name, "created_at": time.time(),
                                 "created": time.strftime("%Y-%m-%d %H:%M:%S"), "request": request.to_dict(),
                                 "status": "running"})


def load_request(root: Path) -> StudyRequest:
    """The stored request of an existing study, for --resume."""
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise StudyDirError(f"{root}: not a study directory (no {MANIFEST}); nothing to resume")
    try:
        return StudyRequest.from_dict(json.loads(manifest.read_text())["request"])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise StudyDirError(f"{manifest}: unreadable study manifest ({exc})") from exc


def update(root: Path, **fields) -> None:
    manifest = json.loads((root / MANIFEST).read_text())
    write_json(root / MANIFEST, {**manifest, **fields})
