"""Shared fixtures. The repo root goes on sys.path so tests can use bench/'s reference implementation.

One local Ray cluster (2 CPUs) serves the whole session, and one real ``smoke`` study on a small generated
synthetic set is shared by the study-runner and report tests.
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def data(tmp_path_factory) -> Path:
    from study.data.convert import convert
    from study.data.synth import SynthSpec, generate
    root = tmp_path_factory.mktemp("study_data")
    generate(root / "raw", SynthSpec(classes=40, clips_per_class=8, val_clips_per_class=3, seed=5))
    convert(root / "raw", root / "converted", workers=1)
    return root / "converted"


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
    """A finished smoke study, 6 trials per subset: (study directory, trials table)."""
    from study.runner import StudyLocation, run_study
    location = StudyLocation(tmp_path_factory.mktemp("studies"), "smoke-test")
    trials = run_study(location, smoke_request(data, "--num-samples", "6"), echo=lambda line: None)
    return location.root, trials
