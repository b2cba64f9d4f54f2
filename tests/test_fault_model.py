"""The fault model's smaller promises, each on the real part: files follow the umask, the seed repeats keep the
per-subset concurrency, an unusable storage or a Ray Client address in RAY_ADDRESS is bad input refused before Ray
starts, an interrupted run's summary counts every trial; and two kill points of the fault-injection harness
(bench/bench_faults.py: a Ctrl-C and a SIGKILL inside Tune's checkpoint window, on the session's cluster), each
resumed and checked for every invariant."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.bench_faults import KillPoint, run_point
from study.driver import summarize
from study.run import main
from study.trainable import SUBSET
from study.tuners import FixedPoints

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664)])
def test_files_the_study_writes_follow_the_umask(tmp_path, umask, mode):
    code = (f"import os; os.umask({umask}); from pathlib import Path; from common.files import write_json; "
            f"write_json(Path({str(tmp_path / 'study.json')!r}), {{}})")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    assert (tmp_path / "study.json").stat().st_mode & 0o777 == mode


def test_seed_repeats_keep_the_per_subset_concurrency():
    points = [{SUBSET: subset, "seed": seed} for subset in ("a", "b") for seed in (1, 2, 3)]
    searcher = FixedPoints(points, max_concurrent=2)
    given = [searcher.suggest(f"t{i}") for i in range(5)]
    assert [p[SUBSET] for p in given[:4]] == ["a", "a", "b", "b"] and given[4] is None  # both subsets at their limit
    searcher.on_trial_complete("t2")  # one of b's ends: b's last point, not a third of a's at once
    assert searcher.suggest("t5")[SUBSET] == "b"
    searcher.on_trial_complete("t0")
    assert searcher.suggest("t6")[SUBSET] == "a" and searcher.suggest("t7") is FixedPoints.FINISHED


@pytest.mark.parametrize("storage", ["a-file/studies", "file://{tmp}/a-file/studies"])
def test_a_storage_under_a_file_is_refused_naming_it_before_ray_starts(data, tmp_path, monkeypatch, capsys, storage):
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["--space", "smoke", "--data", str(data), "--storage", storage.format(tmp=tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'a-file'} is a file, so no study folder can be made under it" in err
    assert "Traceback" not in err and "Started a local Ray" not in err


def test_ray_client_in_ray_address_is_refused_like_the_option(data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    assert main(["--space", "smoke", "--data", str(data), "--storage", str(tmp_path)]) == 2
    assert "RAY_ADDRESS ray://head:10001" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_an_interrupted_runs_summary_counts_every_trial():
    trials = pd.DataFrame({"subset": "kinetics-motion", "repeat_of": None, "stop_reason": ["completed", "running",
                                                                                           "stopped_by_asha"],
                           "last_val_top1": [0.5, 0.1, 0.2], "epochs_run": [3, 1, 1], "epochs_planned": 3,
                           "best_val_top1": [0.5, 0.1, 0.2], "optimizer": "sgd", "lr": 0.1, "batch_size": 8,
                           "scheduler": "none", "weight_decay": 1e-4, "folder": ["a", "b", "c"],
                           "trial_id": ["a", "b", "c"]})
    assert "kinetics-motion: 3 trials; 1 completed, 1 stopped by asha, 1 running" in summarize(trials)


@pytest.mark.parametrize("point", [
    KillPoint("recorder.result_written", 3, "INT", 0.0, new_head=False),
    KillPoint("tune.checkpoint_registered", 3, "KILL", 0.0, new_head=True),
], ids=lambda point: point.describe())
def test_the_fault_harness_holds_its_invariants(cluster, data, tmp_path, point):
    assert run_point(point, tmp_path, str(data), cluster) == []


def test_a_searcher_state_cut_short_at_the_storage_resumes_from_the_journals_instead_of_starting_over(
        cluster, data, tmp_path, capsys):
    """A driver killed while Tune copied its searcher state leaves an empty file; Tune answers a restore that raises
    by starting the experiment over. The searcher continues from the Optuna journals instead: nothing runs again."""
    from bench.bench_faults import check_optuna_agrees
    from training.results import TRIALS, read_table
    args = ["--space", "smoke", "--subset", "kinetics-motion", "--num-samples", "2", "--data", str(data),
            "--storage", str(tmp_path), "--name", "cut", "--no-report", "--address", cluster]
    assert main(args) == 0
    before = read_table(tmp_path / "cut", TRIALS).to_pandas().sort_values("trial_id")
    for state in (tmp_path / "cut" / "search").glob("searcher-state-*.pkl"):
        state.write_bytes(b"")
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert "unreadable (EOFError" in capsys.readouterr().out
    after = read_table(tmp_path / "cut", TRIALS).to_pandas().sort_values("trial_id")
    assert after["trial_id"].tolist() == before["trial_id"].tolist()
    assert after["updated_at"].tolist() == before["updated_at"].tolist()
    check_optuna_agrees(tmp_path / "cut")
