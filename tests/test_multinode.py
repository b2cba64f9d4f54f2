"""A study on a local multi-node Ray cluster that loses a worker node mid-study (tests/multinode_study.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def test_trials_spread_over_nodes_and_survive_losing_one(data, tmp_path):
    report_file = tmp_path / "report.json"
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "multinode_study.py"), str(data), str(tmp_path),
                           str(report_file)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_file.read_text())
    assert report["killed_node"], "no worker node was killed (both workers never trained)"
    assert len(report["nodes_before_kill"]) == 2  # trials ran on both worker nodes
    trials, epochs = pd.DataFrame(report["trials"]), pd.DataFrame(report["epochs"])
    assert len(trials) == 3 and (trials["status"] == "terminated").all()
    assert (trials["stop_reason"] == "completed").all() and (trials["epochs_run"] == 2).all()  # no early stopping
    assert trials["retries"].sum() >= 1  # the trial on the lost node was retried from its checkpoint
    assert not epochs.duplicated(["trial_id", "epoch"]).any()
    runs = epochs.groupby("trial_id")["epoch"].agg(["max", "count"])
    assert (runs["max"] == runs["count"]).all()  # every epoch 1..n, none lost
    before = {tuple(row) for row in report["rows_before_kill"]}
    assert before <= set(map(tuple, epochs[["trial_id", "epoch"]].to_numpy().tolist()))
    after_kill = epochs[~epochs[["trial_id", "epoch"]].apply(tuple, axis=1).isin(before)]
    assert report["killed_node"] not in set(after_kill["node_id"])
