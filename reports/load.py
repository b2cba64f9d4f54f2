"""A study's result files, read without Ray: the manifest, the Parquet tables, the Optuna journal.

Whatever is missing or unreadable becomes a line in ``missing`` instead of an exception, so a report of a
running, partial or broken study still builds what it can and says what it could not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

MANIFEST, EPOCHS, TRIALS, JOURNAL = "study.json", "epochs.parquet", "trials.parquet", "optuna.journal"
SUBSETS = ("kinetics-motion", "kinetics-392")


class NotAStudyError(ValueError):
    """The directory is not a study directory (no study.json and no result tables)."""


@dataclass
class StudyResults:
    root: Path
    name: str
    manifest: dict
    trials: pd.DataFrame
    epochs: pd.DataFrame
    subsets: tuple[str, ...]
    missing: list[str] = field(default_factory=list)

    @property
    def data_source(self) -> str:
        sources = set(self.trials["data_source"].dropna()) if not self.trials.empty else set()
        return "/".join(sorted(sources)) or self.manifest.get("data_source", "unknown")

    def experiment_dir(self, folder) -> Path | None:
        """A trial's experiment folder: in experiments/, or (for a study stored at a URI and copied down) inside
        its Tune trial directory."""
        if not isinstance(folder, str):
            return None
        direct = self.root / "experiments" / folder
        if direct.is_dir():
            return direct
        return next((p for p in self.root.glob(f"*/*/{folder}") if p.is_dir()), None)

    def optuna_study(self, subset: str) -> optuna.Study | None:
        """The subset's Optuna study from the journal, or None (and a line in ``missing``)."""
        path = self.root / JOURNAL
        if not path.is_file():
            self.missing.append(f"{JOURNAL}: not found, so no hyperparameter importance")
            return None
        try:
            return optuna.load_study(study_name=subset, storage=JournalStorage(JournalFileBackend(str(path))))
        except KeyError:
            self.missing.append(f"{JOURNAL}: no Optuna study for {subset}")
            return None


def _read_dataset(path: Path, missing: list[str]) -> pd.DataFrame:
    if not path.exists() or (path.is_dir() and not any(path.glob("*.parquet"))):
        missing.append(f"{path.name}: no rows yet (no trial has reported)")
        return pd.DataFrame()
    frames = []
    for part in sorted(path.glob("*.parquet")) if path.is_dir() else [path]:
        try:
            frames.append(pq.read_table(part).to_pandas())
        except (pa.ArrowInvalid, OSError) as exc:
            missing.append(f"{path.name}/{part.name}: unreadable, skipped ({exc})")
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def load_study(root: Path) -> StudyResults:
    root = Path(root)
    if not root.is_dir():
        raise NotAStudyError(f"{root}: no such directory")
    manifest_path = root / MANIFEST
    if not manifest_path.is_file() and not (root / TRIALS).exists():
        raise NotAStudyError(f"{root}: not a study directory (no {MANIFEST} and no {TRIALS}); pass the folder "
                             "that `python -m study.run` printed as 'results:'")
    missing: list[str] = []
    manifest = {}
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as exc:
            missing.append(f"{MANIFEST}: unreadable ({exc})")
    else:
        missing.append(f"{MANIFEST}: not found")
    trials = _read_dataset(root / TRIALS, missing)
    if len(trials) and "repeat_of" not in trials:
        trials["repeat_of"] = None
    epochs = _read_dataset(root / EPOCHS, missing)
    asked = tuple(manifest.get("request", {}).get("subsets") or ())
    seen = tuple(s for s in SUBSETS if not trials.empty and s in set(trials["subset"]))
    subsets = asked or seen
    for subset in subsets:
        if trials.empty or not (trials["subset"] == subset).any():
            missing.append(f"{subset}: no trial recorded yet")
        elif not trials.loc[trials["subset"] == subset, "best_val_top1"].notna().any():
            missing.append(f"{subset}: no trial finished an epoch with a valid score")
    if manifest.get("status") == "running":
        missing.append("the study is still running (or was interrupted); this report shows the results so far")
    return StudyResults(root, manifest.get("name", root.name), manifest, trials, epochs, subsets, missing)
