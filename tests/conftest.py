"""Shared fixtures. The repo root goes on sys.path so tests can use bench/'s reference implementation.

One generated synthetic set serves every test, one local Ray cluster (2 CPUs) each test process, and one real
``smoke`` study on that set is shared by the study-runner and report tests. The suite runs in two processes
(pytest-xdist, ``-n 2`` in pyproject.toml: a third of a process's time is spent waiting on the processes that
studies start); the set and the smoke study are made once for both, by whichever asks first.
"""

import fcntl
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


SYNTH = {"classes": 40, "clips_per_class": 12, "val_clips_per_class": 4, "seed": 5}


@pytest.fixture(autouse=True)
def progress_said():
    """A test that runs a command with --quiet or -v leaves the next one the default level."""
    from common import logs
    yield
    logs.configure(None)


def made_once(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """``make(folder)`` run once for the whole run: under pytest-xdist in the folder all its processes share, by the
    first to ask, while the others wait on a lock; a folder is used only once its maker returned."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # each process's base is a folder of the run's own
    folder, done = shared / name, shared / f"{name}.done"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a maker that failed left, in this process or the other
            make(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> Path:
    """The session's one generated set: the raw release (raw/) and its conversion (converted/), 40 classes with 12
    training and 4 validation clips each, for the data, trainer, study and report tests alike."""
    from kinetics.convert import convert
    from kinetics.synth import SynthSpec, generate

    def make(root: Path) -> None:
        generate(root / "raw", SynthSpec(**SYNTH))
        convert(root / "raw", root / "converted", workers=1)
    return made_once(tmp_path_factory, "synthetic", make)


@pytest.fixture(scope="session")
def data(synthetic) -> Path:
    return synthetic / "converted"


@pytest.fixture(scope="session")
def cluster():
    import ray
    context = ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield context.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture(scope="session")
def smoke_request():
    """The smoke space's request as the CLI would build it, with extra CLI arguments."""
    from study.run import parser, request_from
    return lambda data, *args: request_from(parser().parse_args(["--space", "smoke", "--data", str(data), *args]))


@pytest.fixture(scope="session")
def smoke(cluster, data, smoke_request, tmp_path_factory):
    """A finished smoke study, the space's 4 trials per subset: (study directory, trials table)."""
    from study.driver import run_study
    from study.study_dir import StudyLocation
    from training.results import TRIALS, read_frame
    location = StudyLocation(made_once(tmp_path_factory, "studies", lambda folder: run_study(
        StudyLocation(folder, "smoke-test"), smoke_request(data), echo=lambda line: None)), "smoke-test")
    return location.root, read_frame(location.root, TRIALS)
