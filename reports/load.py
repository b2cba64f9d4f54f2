"""A study's result files, read without Ray: the manifest, the copy of its search space, the Parquet tables.

Whatever is missing or unreadable becomes a line in ``missing`` instead of an exception, so a report of a
running, partial or broken study still builds what it can and says what it could not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from kinetics.subsets import SUBSET_NAMES
from training.results import EPOCHS, EXPERIMENTS, MANIFEST, SPACE_COPY, TRIALS, read_frame


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
    space: dict = field(default_factory=dict)  # the study's copy of its search space (space.yaml)
    missing: list[str] = field(default_factory=list)

    @property
    def searched(self) -> list[str]:
        """The parameters the study's space searched, in the space's order."""
        return list(self.space.get("params") or {})

    @property
    def space_name(self) -> str:
        return str(self.space.get("name") or Path(str(self.manifest.get("request", {}).get("space", "unknown"))).stem)

    @property
    def data_source(self) -> str:
        sources = set(self.trials["data_source"].dropna()) if not self.trials.empty else set()
        return "/".join(sorted(sources)) or self.manifest.get("data_source", "unknown")

    def experiment_dir(self, folder) -> Path | None:
        """A trial's experiment folder: in experiments/, or (for a study stored at a URI and copied down) inside
        its Tune trial directory."""
        if not isinstance(folder, str):
            return None
        direct = self.root / EXPERIMENTS / folder
        if direct.is_dir():
            return direct
        return next((p for p in self.root.glob(f"*/*/{folder}") if p.is_dir()), None)


def _read_dataset(root: Path, name: str, missing: list[str]) -> pd.DataFrame:
    """The table with its declared columns (no rows when no trial has reported)."""
    if not any((root / name).glob("*.parquet")):
        missing.append(f"{name}: no rows yet (no trial has reported)")
    return read_frame(root, name, skipped=missing)


def _read_space(root: Path, missing: list[str]) -> dict:
    try:
        return yaml.safe_load((root / SPACE_COPY).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        missing.append(f"{SPACE_COPY}: unreadable ({exc.__class__.__name__}), so the searched parameters are unknown")
        return {}


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
    trials = _read_dataset(root, TRIALS, missing)
    epochs = _read_dataset(root, EPOCHS, missing)
    asked = tuple(manifest.get("request", {}).get("subsets") or ())
    seen = tuple(s for s in SUBSET_NAMES if not trials.empty and s in set(trials["subset"]))
    subsets = asked or seen
    for subset in subsets:
        if trials.empty or not (trials["subset"] == subset).any():
            missing.append(f"{subset}: no trial recorded yet")
        elif not trials.loc[trials["subset"] == subset, "best_val_top1"].notna().any():
            missing.append(f"{subset}: no trial finished an epoch with a valid score")
    if manifest.get("status") == "running":
        missing.append("the study is still running (or was interrupted); this report shows the results so far")
    return StudyResults(root, manifest.get("name", root.name), manifest, trials, epochs, subsets,
                        _read_space(root, missing), missing)
