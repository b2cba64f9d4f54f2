"""Benchmark results as data: each ``python -m bench.NAME`` writes bench/results/NAME.json, its figures with the
machine they were measured on, and ``python -m bench.report`` renders the docs' tables from those files."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# The CPU flags that decide how fast the kernels run: the vector units and matrix extensions the libraries use.
FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "fma", "sve", "neon", "asimd")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict:
    """What the figures were measured on: CPU model and its relevant flags, cores, the library versions, the date."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
                 platform.processor() or platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith(("flags", "Features"))), []))
    return {"cpu": model, "cpu_flags": [f for f in FLAGS if f in flags], "cores": os.cpu_count(),
            "machine": platform.machine(), "python": platform.python_version(), "torch": _version("torch"),
            "ray": _version("ray"), "optuna": _version("optuna"), "date": time.strftime("%Y-%m-%d")}


def write(name: str, figures: dict, command: str, out: Path = RESULTS) -> Path:
    """bench/results/NAME.json: the command that measured the figures, the figures, and the machine."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}.json"
    target.write_text(json.dumps({"command": command, "figures": figures, "machine": machine()}, indent=1) + "\n")
    return target


def read(name: str, out: Path = RESULTS) -> dict | None:
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def add_out_argument(parser: argparse.ArgumentParser, name: str) -> None:
    """The ``--out`` every benchmark takes: the folder its NAME.json goes to."""
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help=f"the folder {name}.json is written to (default bench/results)")


def command(places: tuple[str, ...] = ("--out",)) -> str:
    """The command line this benchmark was started with, as a user would type it (``python -m bench.NAME ...``),
    without the options in ``places`` (each taking a value), which change where things go, not the figures."""
    main = sys.modules["__main__"]
    module = main.__spec__.name if getattr(main, "__spec__", None) else Path(sys.argv[0]).stem
    given, kept, i = sys.argv[1:], [], 0
    while i < len(given):
        if given[i] in places:
            i += 2
            continue
        if not given[i].startswith(tuple(f"{option}=" for option in places)):
            kept.append(given[i])
        i += 1
    return shlex.join(["python", "-m", module, *kept])
