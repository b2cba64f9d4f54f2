"""Where a run's data comes from: a converted directory, or the built-in synthetic set, made once and cached.

The synthetic set is generated and converted once per spec into a cache directory under a file lock, so
concurrent trials on a node share one copy and none of them converts it again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from kinetics.convert import convert
from kinetics.dataset import ConvertedDataset
from kinetics.synth import SynthSpec, generate

# The CPU demo's synthetic set: the 30 kinetics-motion classes plus 10 others, so both subset rules apply
# (kinetics-392 then keeps 32 of these 40 classes, which every output labels as synthetic) and a checkpoint can be
# pretrained on classes outside kinetics-motion; small enough that a study of both subsets takes minutes.
CPU_SYNTH = SynthSpec(classes=40, clips_per_class=24, val_clips_per_class=6, seed=0)


def cache_root() -> Path:
    return Path(os.environ.get("STGCN_STUDY_CACHE", Path.home() / ".cache" / "stgcn-study"))


def synthetic_dir(spec: SynthSpec = CPU_SYNTH, root: Path | None = None) -> Path:
    """The converted synthetic set for ``spec``, generating and converting it on first use."""
    root = root or cache_root()
    key = hashlib.sha1(json.dumps(asdict(spec), sort_keys=True).encode()).hexdigest()[:10]
    final = root / "synthetic" / f"{spec.classes}c_{spec.clips_per_class}x_seed{spec.seed}_{key}"
    if (final / "converted" / "provenance.json").is_file():
        return final / "converted"
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (final / "converted" / "provenance.json").is_file():
            work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
            try:
                generate(work / "raw", spec)
                convert(work / "raw", work / "converted", workers=1)  # in-process: callers need no main guard
                shutil.rmtree(work / "raw")
                shutil.rmtree(final, ignore_errors=True)
                os.replace(work, final)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return final / "converted"


def resolve_data_dir(data: str) -> Path:
    """``synthetic`` -> the cached synthetic set; anything else is a converted directory."""
    return synthetic_dir() if data == "synthetic" else Path(data)


def open_data(data: str) -> ConvertedDataset:
    return ConvertedDataset(resolve_data_dir(data))
