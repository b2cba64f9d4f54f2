"""The fault model's smaller promises, each on the real part: files follow the umask, the seed repeats keep the
per-subset concurrency, an unusable storage or a Ray Client address in RAY_ADDRESS is bad input refused before Ray
starts, an interrupted run's summary counts every trial; and two kill points of the fault-injection harness
(bench/bench_faults.py: a Ctrl-C and a SIGKILL inside Tune's checkpoint window, on the session's cluster), each
resumed and checked for every invariant."""

from __future__ import annotations

import signal
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
    assert err.startswith("error: --storage ") and err.count("\n") == 1  # one line, not wrapped in 'cannot be reached'
    assert err.endswith(f": {tmp_path / 'a-file'} is a file, so no study folder can be made under it\n")
    assert "Traceback" not in err and "Started a local Ray" not in err


@pytest.mark.parametrize("storage", ["/proc/stgcn-study/studies", "file:///proc/stgcn-study/studies"])
def test_a_storage_that_cannot_be_written_is_refused_by_a_probe_before_ray_starts(data, tmp_path, monkeypatch, capsys,
                                                                                   storage):
    """/proc takes no file, even from root (whom permissions never stop): only writing one tells."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("STGCN_STUDY_CACHE", str(tmp_path / "cache"))
    assert main(["--space", "smoke", "--data", str(data), "--storage", storage, "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert f"--storage {storage}: cannot write in /proc: creating a file there failed (" in err
    assert len(err.strip().splitlines()) == 1 and "Started a local Ray" not in err
    assert not list(tmp_path.iterdir()) or [p.name for p in tmp_path.iterdir()] == ["cache"]
    assert not list((tmp_path / "cache").rglob("study.json"))


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
    KillPoint("recorder.writing", 3, "ENOSPC", 0.0, new_head=False),  # the disk full under a table's write
], ids=lambda point: point.describe())
def test_the_fault_harness_holds_its_invariants(cluster, data, tmp_path, point):
    assert run_point(point, tmp_path, str(data), cluster) == []


def test_a_searcher_state_cut_short_or_older_than_tunes_trials_resumes_from_the_journals(cluster, data, tmp_path,
                                                                                         capsys):
    """A driver killed while Tune copied its state to the storage leaves the searcher state cut short (Tune answers a
    restore that raises by starting the experiment over), or older than the trials Tune resumes (the files were
    copied one after the other). Either way the searcher is matched to Tune's trials from the Optuna journals:
    nothing runs again, no trial is asked twice, Optuna agrees with the tables, and a trial asked after Tune's last
    save is failed as abandoned."""
    import pickle

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from bench.bench_faults import check_optuna_agrees
    from training.results import TRIALS, optuna_journal, read_frame

    def optuna_study():
        journal = JournalFileBackend(str(optuna_journal(tmp_path / "cut", "kinetics-motion")))
        return optuna.load_study(study_name="kinetics-motion", storage=JournalStorage(journal))
    args = ["--space", "smoke", "--subset", "kinetics-motion", "--num-samples", "2", "--data", str(data),
            "--storage", str(tmp_path), "--name", "cut", "--no-report", "--address", cluster]
    assert main(args) == 0
    before = read_frame(tmp_path / "cut", TRIALS).sort_values("trial_id")
    for state in (tmp_path / "cut" / "search").glob("searcher-state-*.pkl"):
        state.write_bytes(b"")
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert "unreadable (EOFError" in capsys.readouterr().out
    for state in (tmp_path / "cut" / "search").glob("searcher-state-*.pkl"):  # as saved before the last trial
        if not state.stat().st_size:
            continue
        older = pickle.loads(state.read_bytes())
        last = max(older["searches"]["kinetics-motion"][0]["trials"].items(), key=lambda item: item[1])[0]
        del older["owner"][last], older["searches"]["kinetics-motion"][0]["trials"][last]
        older["live"]["kinetics-motion"].discard(last)
        state.write_bytes(pickle.dumps(older))
    ghost = optuna_study().ask()  # asked after Tune's last save: no Tune trial will run it
    ghost.set_user_attr("tune_trial_id", "ghost")
    assert main([*args, "--resume"]) == 0
    assert "saved with 1 trials, Tune resumes 2" in capsys.readouterr().out
    (abandoned,) = [t for t in optuna_study().trials if t.user_attrs["tune_trial_id"] == "ghost"]
    assert abandoned.state == optuna.trial.TrialState.FAIL and "abandoned" in abandoned.user_attrs
    after = read_frame(tmp_path / "cut", TRIALS).sort_values("trial_id")
    assert after["trial_id"].tolist() == before["trial_id"].tolist()
    assert after["updated_at"].tolist() == before["updated_at"].tolist()
    check_optuna_agrees(tmp_path / "cut")


def test_a_searcher_state_saved_before_a_trial_ended_that_tunes_state_has_ended_tells_optuna_from_the_tables(
        cluster, data, tmp_path, capsys):
    """Tune copies its trials' state and the searcher's one after the other: a driver killed in between can leave
    the searcher's state (its journal: the trial running) from before a trial ended, beside Tune's state from after
    (the trial terminated, so Tune will not run it again), with the same trials in both. The resume tells Optuna how
    that trial ended from the tables, and the search does not keep it as running."""
    import json
    import pickle

    from bench.bench_faults import check_optuna_agrees
    from training.results import TRIALS, read_frame

    args = ["--space", "smoke", "--subset", "kinetics-motion", "--num-samples", "2", "--data", str(data),
            "--storage", str(tmp_path), "--name", "older", "--no-report", "--address", cluster]
    assert main(args) == 0
    before = read_frame(tmp_path / "older", TRIALS)
    for state in (tmp_path / "older" / "search").glob("searcher-state-*.pkl"):
        saved = pickle.loads(state.read_bytes())
        own, journal = saved["searches"]["kinetics-motion"]
        last, number = max(own["trials"].items(), key=lambda item: item[1])
        lines = journal.decode().splitlines(keepends=True)
        ended = next(i for i, line in enumerate(lines) if json.loads(line).get("op_code") == 6
                     and json.loads(line)["trial_id"] == number and json.loads(line)["state"] != 0)
        saved["searches"]["kinetics-motion"] = (own, "".join(lines[:ended]).encode())  # the trial still running
        saved["live"]["kinetics-motion"].add(last)
        state.write_bytes(pickle.dumps(saved))
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    after = read_frame(tmp_path / "older", TRIALS)
    assert sorted(after["updated_at"]) == sorted(before["updated_at"])  # nothing ran again
    check_optuna_agrees(tmp_path / "older")


def test_the_state_upload_window_copies_the_files_before_one_half_of_it_and_none_after(tmp_path, monkeypatch):
    """The harness's cut inside Tune's upload of its experiment state: what a driver killed mid-copy leaves."""
    import pyarrow.fs
    from ray.train._internal import storage

    from study import faults
    staged = tmp_path / "staged"
    staged.mkdir()
    for name in ("a.json", "b.pkl", "c.json"):
        (staged / name).write_bytes(name.encode() * 100)
    monkeypatch.setattr(storage, "_upload_to_fs_path", storage._upload_to_fs_path)  # undone after the test
    monkeypatch.setattr(faults, "_counts", {})
    monkeypatch.setenv(faults.ENV, "tune.state_upload_cut:4:INT")  # the 4th passage cuts the 2nd file (4 mod 3)
    faults.install()
    fs = pyarrow.fs.LocalFileSystem()
    for _ in range(3):  # ordinary copies
        storage._upload_to_fs_path(str(staged), fs, str(tmp_path / "ordinary"))
        assert sorted(p.name for p in (tmp_path / "ordinary").iterdir()) == ["a.json", "b.pkl", "c.json"]
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever an earlier test left (Tune's)
    try:
        with pytest.raises(KeyboardInterrupt):  # the planned passage (SIGINT here is Ctrl-C in this thread)
            storage._upload_to_fs_path(str(staged), fs, str(tmp_path / "cut"))
    finally:
        signal.signal(signal.SIGINT, previous)
    cut = tmp_path / "cut"
    assert (cut / "a.json").read_bytes() == (staged / "a.json").read_bytes()
    assert (cut / "b.pkl").read_bytes() == (staged / "b.pkl").read_bytes()[:len(b"b.pkl") * 50]
    assert not (cut / "c.json").exists()


@pytest.mark.parametrize("module", ["yaml", "study.driver"])
def test_ctrl_c_while_the_cli_loads_its_modules_exits_130_with_one_line(tmp_path, module):
    """Ctrl-C delivered the moment study.run imports ``module`` (at its top, or the driver once the arguments parse):
    exactly then, by an import hook, so the test needs no timing."""
    hook = ("import builtins, os, runpy, signal, sys\n"
            "load = builtins.__import__\n"
            "def interrupting(name, *args, **kwargs):\n"
            f"    if name == {module!r}:\n"
            "        os.kill(os.getpid(), signal.SIGINT)\n"
            "    return load(name, *args, **kwargs)\n"
            "builtins.__import__ = interrupting\n"
            f"sys.argv = ['study.run', '--space', 'smoke', '--storage', {str(tmp_path / 'studies')!r}]\n"
            "runpy.run_module('study.run', run_name='__main__', alter_sys=True)\n")
    done = subprocess.run([sys.executable, "-c", hook], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 130
    assert done.stderr.strip() == "interrupted before the study started; nothing was written"
    assert not (tmp_path / "studies").exists()


def test_a_full_disk_while_the_report_is_built_says_in_one_line_how_to_build_it_later(monkeypatch, capsys, tmp_path):
    import errno

    import reports.build
    from study.run import finish, parser
    from study.study_dir import StudyLocation

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(reports.build, "build", full)
    location = StudyLocation(tmp_path, "done")
    assert finish(parser().parse_args(["--space", "smoke"]), location, pd.DataFrame(), print, 1) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: the disk is full (No space left on device) while the report was built; the study itself is "
                   f"finished and complete: free space, then python -m reports.build {location.root}"]
