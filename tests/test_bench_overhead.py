"""bench_overhead's peer: the study's own trials, replayed by plain Optuna with the trainer in process, do the same
arithmetic as they did in the study (so the two wall times compare the same work)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.bench_overhead import concurrency, run_peer, trial_jobs
from bench.cpu_accounting import kind
from training.results import EPOCHS, read_frame


def test_the_peer_replays_the_studys_trials_with_the_same_scores(smoke, tmp_path):
    root, trials = smoke
    jobs = trial_jobs(root)
    assert len(jobs) == len(trials) and [epochs for _, epochs, _ in jobs] == \
        trials.sort_values("started_at")["epochs_run"].tolist()
    assert {rungs for _, _, rungs in jobs} == {(1, 2)}  # the smoke space's ASHA rungs (grace 1, factor 2, 3 epochs)
    assert 1 <= concurrency(root) <= 2  # the smoke study runs two trials at once on the suite's 2-CPU Ray
    chosen = jobs[:2]
    peer = run_peer(chosen, workers=1, threads=1, out=tmp_path)
    # the worker's CPU seconds are the trainer's: it trained the two trials' epochs (seconds), sampled twice a second
    assert peer["wall_s"] > 0 and peer["cpu_s"]["trainer"] > 0.5
    recorded = read_frame(root, EPOCHS)
    ordered = trials.sort_values("started_at").head(2)
    for index, (_, row) in enumerate(ordered.iterrows()):
        peer = pd.read_csv(next(tmp_path.glob(f"{index}_*")) / "save_values_csv" / "epochs.csv")
        study = recorded[recorded["trial_id"] == row["trial_id"]].sort_values("epoch")
        for metric in ("train_loss", "val_top1"):  # NaN where a trial diverged
            np.testing.assert_array_equal(peer[metric].to_numpy(float), study[metric].to_numpy(float), metric)


def test_processes_are_told_apart_by_what_they_run():
    """What a study's processes call themselves (comm, then command line) decides whose CPU seconds they are."""
    said = {"ray::ImplicitFu ray::ImplicitFunc.train": "trainer",
            "ray::main.kinet ray::main.kinetics-motion.0003.train": "trainer",
            "python3 /venv/bin/python -B -c from multiprocessing.spawn import spawn_main; spawn_main(...)": "trainer",
            "raylet /venv/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet --raylet_socket_name=x": "ray",
            "gcs_server /venv/.../ray/core/src/ray/gcs/gcs_server --log_dir=/tmp": "ray",
            "ray-dashboard-N ray-dashboard-NodeHead-0 (/venv/bin/python -c ...)": "ray",
            "ray::DashboardA ray::DashboardAgent": "ray", "ray::IDLE ray::IDLE": "ray",
            "python /venv/bin/python -u /venv/.../ray/_private/log_monitor.py --session-dir=x": "ray",
            "python /venv/bin/python -m study.run --space sgd_lr --name main-0": "driver",
            "python /venv/bin/python -B -c from multiprocessing.resource_tracker import main": "other"}
    assert {description: kind(description, "study.run") for description in said} == said


def test_a_process_that_ended_before_it_was_reaped_keeps_its_kind_and_its_cpu_seconds():
    """An ended process not yet reaped shows no command line; the account keeps what it saw while it ran."""
    import subprocess
    import sys
    import time

    from bench.cpu_accounting import CpuAccount
    burn = ("import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.6: pass\n"
            "time.sleep(1.0)  # spawn_main: named as a peer's worker is")
    with CpuAccount(driver="no-driver-here") as account:
        child = subprocess.Popen([sys.executable, "-c", burn])
        stat = Path(f"/proc/{child.pid}/stat")
        while stat.read_text().rsplit(") ", 1)[1][0] != "Z":  # its exit, seen without reaping it (poll would)
            time.sleep(0.1)
        time.sleep(1.5)  # ended, not reaped, for three samples
        child.wait()
    # every process started meanwhile is counted (a parallel test's too): this one is found by its pid
    (cpu, description), = [seen for (pid, _), seen in account.seen.items() if pid == child.pid]
    assert kind(description, "no-driver-here") == "trainer" and cpu >= 0.5, (cpu, description)


def test_rays_floor_names_each_service_and_charges_its_cpu_to_the_busy_cores():
    """bench_overhead's floor: a Python service is named by its script; Ray's CPU seconds come out of the trials'
    cores."""
    from bench.ray_floor import floor_over_peer, service
    assert service("python /venv/bin/python -u /venv/lib/ray/_private/log_monitor.py --session-dir=x") == \
        "log_monitor.py"
    assert service("raylet /venv/lib/ray/core/src/ray/raylet/raylet --raylet_socket_name=x") == "raylet"
    assert service("ray::IDLE ray::IDLE") == "ray::IDLE"
    # 6 CPU s to start, 6 CPU s a minute for 300 s, on 2 cores: (6 + 30) / 2 = 18 s, plus a 1.5 s shutdown
    assert floor_over_peer(6.0, 6.0, 1.5, peer_s=300.0, cores=2) == pytest.approx(1 + 19.5 / 300)
