"""GPUs on an autoscaling cluster: a study whose space gives trials a GPU share makes the autoscaler start GPU
workers, although no GPU is up when the study starts, and its trials run there (tests/autoscaling_study.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from study.trainable import trial_device
from training.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
GPU_SPACE = """
base: {device: cpu}   # the fake GPU nodes have no CUDA: the share is what is tested, not the device
cpu_profile: {batch_size: 16, epochs: 2, scheduler: none, cap_per_class: 4, sample_images: 0}
params:
  lr: {type: loguniform, low: 1.0e-3, high: 1.0e-1}
resources:
  cpu: {cpus: 1, gpus: 0.5}
asha: {grace_period: 1, reduction_factor: 2}
trials: 2
subsets: [kinetics-motion]
include_paper_recipe: false
"""


def test_trials_asking_for_a_gpu_share_start_gpu_workers_and_run_there(data, tmp_path):
    space = tmp_path / "gpus.yaml"
    space.write_text(GPU_SPACE)
    report_file = tmp_path / "report.json"
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "autoscaling_study.py"), str(data),
                           str(tmp_path / "studies"), str(space), str(report_file)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_file.read_text())
    assert report["exit"] == 0 and report["gpus_at_start"] == 0
    assert report["epoch_nodes"], "no epoch ran"
    for node in set(report["epoch_nodes"]):
        assert report["node_resources"][node].get("GPU") == 1, "an epoch ran on a node without a GPU"


def test_a_trial_trains_on_exactly_the_devices_ray_reserved_for_it():
    assert trial_device("auto", []) == "cpu"  # Ray 2.60 leaves CUDA visible to a trial without GPUs
    assert trial_device("auto", ["0"]) == "cuda"  # Ray made the reserved GPU the only visible one
    assert trial_device("cpu", ["0"]) == "cpu"
    try:
        trial_device("cuda", [])
    except ConfigError as exc:
        assert "reserved no GPU" in str(exc)
    else:
        raise AssertionError("a trial without a GPU share must not be put on a GPU")
