"""One folder per experiment, in the layout researchers already keep by hand:

    <index>_<classes>_<id>_<subset with _>_<classes>_<From_Scratch|Pretrained>/
        log/                 training log, resolved config (with seed and data source), source files of the run
        matplotlib_graphs/   accuracy and loss curves
        save_values_csv/     per-epoch values, inference time per clip
        images_independant/  sample skeletons with true and predicted labels

Written by the standalone trainer and by every study trial alike; each file is replaced atomically, so a
folder read mid-run is always consistent, and rewritten after a restore from a checkpoint.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from common.files import atomic_path, write_json
from training.config import TrainConfig
from training.plots import plot_curves, plot_skeleton

SUBDIRS = ("log", "matplotlib_graphs", "save_values_csv", "images_independant")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def folder_name(index: int, experiment_id: int, config: TrainConfig, num_classes: int) -> str:
    subset = config.subset.replace("-", "_")
    origin = "Pretrained" if config.pretrained else "From_Scratch"
    return f"{index}_{num_classes}_{experiment_id}_{subset}_{num_classes}_{origin}"


def parse_folder_name(name: str) -> dict:
    """Inverse of folder_name for the fields reports need (index, classes, experiment id)."""
    index, classes, experiment_id, *_ = name.split("_")
    return {"index": int(index), "num_classes": int(classes), "experiment_id": int(experiment_id)}


class ExperimentFolder:
    def __init__(self, path: Path):
        self.path = Path(path)
        for sub in SUBDIRS:
            (self.path / sub).mkdir(parents=True, exist_ok=True)

    def write_run_info(self, info: dict) -> None:
        """The resolved config plus what makes the result interpretable: seed, data source, classes, variant."""
        write_json(self.path / "log" / "config.json", info)

    def copy_sources(self) -> None:
        """The code that ran, so an old result can be traced to its exact model and training loop."""
        target = self.path / "log" / "source"
        for package in ("common", "model", "kinetics", "training"):
            for source in sorted((PACKAGE_ROOT / package).rglob("*.py")):
                destination = target / source.relative_to(PACKAGE_ROOT)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)

    def log(self, line: str) -> None:
        with open(self.path / "log" / "train.log", "a", encoding="utf-8") as handle:
            handle.write(line.rstrip("\n") + "\n")

    def record_epochs(self, history: list[dict], title: str, stop_epoch: int | None = None,
                      stop_label: str | None = None, curves: bool = True) -> pd.DataFrame:
        """Rewrite the per-epoch CSV, and with ``curves`` the curves, from the full history (after a restore too)."""
        table = pd.DataFrame(history)
        with atomic_path(self.path / "save_values_csv" / "epochs.csv") as tmp:
            table.to_csv(tmp, index=False)
        if curves:
            plot_curves(table, self.path / "matplotlib_graphs", title, stop_epoch, stop_label)
        return table

    def write_samples(self, clips, true_labels, predicted, class_names, bones) -> None:
        for i, (clip, truth, guess) in enumerate(zip(clips, true_labels, predicted)):
            verdict = "correct" if truth == guess else "wrong"
            title = f"true: {class_names[truth]}  |  predicted: {class_names[guess]} ({verdict})"
            plot_skeleton(clip, self.path / "images_independant" / f"sample_{i}.png", title, bones)
