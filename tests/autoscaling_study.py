"""Run by tests/test_autoscaler.py in its own process: a Ray head with no CPUs whose autoscaler starts worker nodes on
demand (Ray's fake multi-node provider: the nodes are processes on this machine), one worker type with CPUs only and
one declaring a GPU, and a study started as the README's cluster command starts it, with the GPU share the space
gives. Writes as JSON to the file named by its fourth argument the nodes that came up and where each epoch ran
(not stdout: the worker nodes' processes share it).

Ray's ray.cluster_utils.AutoscalingCluster drives the same provider, but it runs `ray stop --force` (which would end
the test session's own cluster) and reads a config template the Ray 2.60 wheel does not ship; so the head is
started here the way that class starts it, on a port of its own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray

from study.run import main as study_main
from training.results import EPOCHS, read_frame

RAY = str(Path(sys.executable).parent / "ray")
WORKER_TYPES = {"cpu_worker": {"resources": {"CPU": 2}, "node_config": {}, "min_workers": 0, "max_workers": 1},
                "gpu_worker": {"resources": {"CPU": 2, "GPU": 1}, "node_config": {}, "min_workers": 0,
                               "max_workers": 1}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def autoscaling_config(gcs_address: str) -> dict:
    return {"cluster_name": "fake-autoscaling", "max_workers": 2, "upscaling_speed": 1.0, "idle_timeout_minutes": 0.1,
            "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                         "disable_launch_config_check": True, "gcs_address": gcs_address},
            "available_node_types": {"ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
                                     **WORKER_TYPES},
            "head_node_type": "ray.head.default", "auth": {}, "docker": {}, "initialization_commands": [],
            "setup_commands": [], "head_setup_commands": [], "worker_setup_commands": [],
            "head_start_ray_commands": [], "worker_start_ray_commands": [], "file_mounts": {},
            "cluster_synced_files": [], "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": []}


def main(data: str, storage: str, space: str, report: str) -> None:
    # A throwaway cluster of this process alone: no token authentication (Ray 2.60 enables it for new clusters; the
    # fake provider's nodes and this client would otherwise have to share the head's token).
    os.environ["RAY_AUTH_MODE"] = "disabled"
    port = _free_port()
    address = f"{ray._private.services.get_node_ip_address()}:{port}"
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(autoscaling_config(address), handle)
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", f"--port={port}", "--num-cpus=0", "--include-dashboard=false",
         f"--autoscaling-config={handle.name}", f"--dashboard-agent-listen-port={_free_port()}",
         f"--metrics-export-port={_free_port()}"],
        env={**os.environ, "AUTOSCALER_UPDATE_INTERVAL_S": "1", "RAY_FAKE_CLUSTER": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not ray.is_initialized():
            try:
                ray.init(address=address, log_to_driver=False)
            except (ConnectionError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        gpus_at_start = ray.cluster_resources().get("GPU", 0)
        code = study_main(["--space", space, "--data", data, "--storage", storage, "--name", "gpus",
                           "--address", address, "--no-report"])
        nodes = {n["NodeID"]: n["Resources"] for n in ray.nodes()}
        epochs = read_frame(Path(storage) / "gpus", EPOCHS)
        Path(report).write_text(json.dumps({
            "exit": code, "gpus_at_start": gpus_at_start, "epoch_nodes": epochs["node_id"].tolist(),
            "node_resources": {n: nodes.get(n, {}) for n in set(epochs["node_id"])}}))
        ray.shutdown()
        deadline = time.monotonic() + 60  # idle workers go after idle_timeout_minutes, stopped by the autoscaler
        while time.monotonic() < deadline and len(_alive(address)) > 1:
            time.sleep(1)
    finally:  # the head's processes share its session; stopping them gracefully takes Ray 40 s
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=30)


def _alive(address: str) -> list:
    ray.init(address=address, log_to_driver=False)
    try:
        return [n for n in ray.nodes() if n["Alive"]]
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:5])
