"""Shared fixtures. The repo root goes on sys.path so tests can use bench/'s reference implementation.

One generated synthetic set serves every test, one local Ray cluster (2 CPUs) the whole session, and one real
``smoke`` study on that set is shared by the study-runner and report tests.
"""

import sys
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


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> Path:
    """The session's one generated set: the raw release (raw/) and its conversion (converted/), 40 classes with 12
    training and 4 validation clips each, for the data, trainer, study and report tests alike."""
    from kinetics.convert import convert
    from kinetics.synth import SynthSpec, generate
    root = tmp_path_factory.mktemp("synthetic")
    generate(root / "raw", SynthSpec(**SYNTH))
    convert(root / "raw", root / "converted", workers=1)
    return root


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
    location = StudyLocation(tmp_path_factory.mktemp("studies"), "smoke-test")
    trials = run_study(location, smoke_request(data), echo=lambda line: None)
    return location.root, trials
