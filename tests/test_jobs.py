"""A study submitted as a Ray Job to a head started like on a cluster (`ray start --head` with its dashboard),
watched through the Jobs API, the State API and the node's metrics endpoint."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from ray.job_submission import JobStatus, JobSubmissionClient
from ray.util.state import list_actors, list_jobs, list_tasks

RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head(cluster):
    """A separate 2-CPU head; `--block` ties its processes to this one, so stopping it stops only this head.
    Token authentication is on, as Ray 2.60 makes it for new clusters: the session's own ray.init (``cluster``)
    switched this process to token mode, so the clients here and the head read the same ~/.ray/auth_token."""
    port, dashboard, metrics, agent = _free_port(), _free_port(), _free_port(), _free_port()
    process = subprocess.Popen(  # its own agent port: the session's cluster on this machine holds the default
        [RAY, "start", "--head", "--block", f"--port={port}", "--num-cpus=2", "--include-dashboard=true",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", f"--metrics-export-port={metrics}",
         f"--dashboard-agent-listen-port={agent}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{dashboard}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                JobSubmissionClient(url)  # connects with the cluster's auth token, as `ray job submit` does
                break
            except (ConnectionError, RuntimeError, OSError):
                time.sleep(1)
        else:
            pytest.fail("the Ray head's dashboard did not come up within 120 s")
        yield url, f"http://127.0.0.1:{metrics}/metrics"
    finally:  # every process of this head is in its session; a graceful `ray stop` of it takes half a minute
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def test_smoke_study_as_a_job_is_visible_in_the_dashboard_and_exports_trial_metrics(head, data, tmp_path):
    url, metrics_url = head
    client = JobSubmissionClient(url)
    entrypoint = (f"{sys.executable} -m study.run --space smoke --subset kinetics-motion --num-samples 3 --set epochs=2 "
                  "--max-concurrent 1 "
                  f"--data {data} --storage {tmp_path} --name jobstudy --no-report")
    for _ in range(30):  # the head's job agent starts a few seconds after its dashboard
        try:
            job = client.submit_job(entrypoint=entrypoint, metadata={"study": "jobstudy"})
            break
        except RuntimeError as exc:
            if "No available agent" not in str(exc):
                raise
            time.sleep(2)
    seen_metric, deadline = "", time.monotonic() + 300
    while time.monotonic() < deadline:
        status = client.get_job_status(job)
        if not seen_metric:
            try:
                text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
                seen_metric = next((line for line in text.splitlines()
                                    if line.startswith("ray_stgcn_val_top1{") and "jobstudy" in line), "")
            except OSError:
                pass
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            break
        time.sleep(1)
    logs = client.get_job_logs(job)
    assert status == JobStatus.SUCCEEDED, logs[-3000:]
    assert "ray: joined" in logs and "results:" in logs
    assert any(j.submission_id == job for j in list_jobs(address=url))
    # One trial at a time: the three trials run in one actor, started for the first and named after it; each task
    # it ran and each line it logged names the trial it ran then.
    trials = [f"jobstudy.kinetics-motion.{i:04d}" for i in range(3)]
    actors = [a for a in list_actors(address=url, limit=1000, detail=True) if a.repr_name.startswith("jobstudy.")]
    assert [a.repr_name for a in actors] == trials[:1]
    tasks = {t.name for t in list_tasks(address=url, limit=10_000, detail=True)}
    assert {f"{trial}.train" for trial in trials} <= tasks
    assert all(f"({trial} pid=" in logs and f"[{trial}] epoch 1:" in logs for trial in trials)
    assert "Checkpoint successfully created" not in logs  # Ray Train's line per report: shown with -v only
    assert 'study="jobstudy"' in seen_metric and 'subset="kinetics-motion"' in seen_metric
    assert 'trial="jobstudy.kinetics-motion.' in seen_metric
    assert (tmp_path / "jobstudy" / "trials.parquet").is_dir()
