"""Run by tests/test_multinode.py in its own process (the test process already holds a Ray connection):
a local multi-node Ray (a head with no CPUs for trials, two 1-CPU worker nodes, each its own raylet), a smoke
study on it (2 epochs a trial, no early stopping), and, once both workers have trained an epoch, a worker node
with a trial still running killed without warning. Writes what happened as JSON to the file named by its
third argument (not stdout: the nodes' raylets share it and print while the cluster shuts down)."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from study.driver import run_study
from study.run import parser, request_from
from study.study_dir import StudyLocation
from training.results import EPOCHS, read_frame

PLANNED = 2  # epochs per trial: without early stopping every trial runs them all


def main(data: str, storage: str, report: str) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    location = StudyLocation(Path(storage), "multinode")
    request = request_from(parser().parse_args(["--space", "smoke", "--subset", "kinetics-motion", "--data", data,
                                                "--num-samples", "3", "--max-concurrent", "2",
                                                "--no-early-stopping", "--set", f"epochs={PLANNED}"]))
    killed: dict = {}

    def kill_a_worker_once_both_have_trained() -> None:
        """The node killed is one whose trial is still running, so that trial has to be retried elsewhere."""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if (location.root / EPOCHS).is_dir():
                epochs = read_frame(location.root, EPOCHS)
                latest = epochs.sort_values("epoch").groupby("trial_id").last()
                busy = set(latest.loc[latest["epoch"] < PLANNED, "node_id"])
                if epochs["node_id"].nunique() >= 2 and busy:
                    victim = next(w for w in workers if w.node_id in busy)
                    killed["node_id"] = victim.node_id
                    killed["rows_before"] = epochs.to_dict("records")
                    cluster.remove_node(victim, allow_graceful=False)
                    return
            time.sleep(0.3)

    killer = threading.Thread(target=kill_a_worker_once_both_have_trained, daemon=True)
    killer.start()
    trials = run_study(location, request, echo=lambda line: None)
    killer.join(timeout=5)
    epochs = read_frame(location.root, EPOCHS)
    Path(report).write_text(json.dumps({
        "killed_node": killed.get("node_id"),
        "nodes_before_kill": sorted({r["node_id"] for r in killed.get("rows_before", [])}),
        "rows_before_kill": [[r["trial_id"], r["epoch"]] for r in killed.get("rows_before", [])],
        "trials": trials[["trial_id", "status", "stop_reason", "epochs_run", "retries"]].to_dict("records"),
        "epochs": epochs[["trial_id", "epoch", "node_id"]].to_dict("records"),
    }, default=str))
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:4])
