"""The project as a user installs it: the wheel built from this tree, installed into a fresh virtualenv, run from
another folder, finds its search spaces and runs a study (no import from the source tree)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtualenv holding only the wheel (no dependency is fetched: they are read from the test's own environment
    through a path entry, which does not activate that environment's editable install of the project)."""
    work = tmp_path_factory.mktemp("install")
    source = shutil.copytree(ROOT, work / "source", ignore=shutil.ignore_patterns(  # a build writes beside its source
        ".venv*", ".git", "studies", "build", "*.egg-info", "__pycache__", ".*_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(work / "wheel"), str(source)], check=True, capture_output=True, text=True)
    (wheel,) = (work / "wheel").glob("stgcn_study-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, text=True)
    return python


def run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}
    return subprocess.run([str(python), "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_the_installed_package_lists_its_spaces_from_another_folder(installed, tmp_path):
    done = run(installed, "study.run", "--list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {line.split()[0] for line in done.stdout.splitlines()} >= {"sgd_lr", "smoke", "full"}
    origin = subprocess.run([str(installed), "-c", "import study, search_spaces; print(study.__file__, "
                             "search_spaces.__file__)"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert str(ROOT) not in origin.stdout  # the installed copy, not the source tree


def test_the_installed_package_plans_and_runs_a_tiny_study(installed, tmp_path, data):
    plan = run(installed, "study.run", "--space", "sgd_lr", "--plan", str(ROOT / "cluster.yaml"), cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    study = run(installed, "study.run", "--space", "smoke", "--subset", "kinetics-motion", "--num-samples", "2",
                "--data", str(data), "--set", "epochs=2", "--name", "tiny", "-q", cwd=tmp_path)
    assert study.returncode == 0, study.stderr[-2000:]
    assert (tmp_path / "studies" / "tiny" / "report" / "summary.json").is_file()
