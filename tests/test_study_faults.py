"""What a day-long cluster study meets, through the CLI on real Ray and real Optuna: relative paths, samples the
config refuses, diverged trials, a driver killed mid-study and resumed on a new head or after the study moved, a
second driver, starts that fail."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from optuna.trial import TrialState

from bench.bench_faults import check_optuna_agrees, optuna_trials
from reports.answer import answer_lines
from study.run import SOME_ERRORED, main
from study.study_dir import driver_lock
from training.experiment import CHECKPOINT
from training.results import EPOCHS, TRIALS, read_frame

ROOT = Path(__file__).resolve().parents[1]
SMOKE = (ROOT / "search_spaces" / "smoke.yaml").read_text()


def _driver(args: list[str], cwd: Path, **env) -> subprocess.Popen:
    """The CLI in its own process group, so it and everything it started can be killed at once."""
    return subprocess.Popen([sys.executable, "-m", "study.run", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def _kill_when(driver: subprocess.Popen, ready, what: str, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready() and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.3)
    assert driver.poll() is None, f"the study ended before {what}"
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()


def _epochs(root: Path) -> pd.DataFrame:
    return read_frame(root, EPOCHS) if (root / EPOCHS).is_dir() else pd.DataFrame(columns=["trial_id"])


def test_a_killed_study_resumes_on_a_new_head_from_its_own_space_with_every_trial_in_its_tables_and_in_optuna(
        cluster, data, tmp_path, monkeypatch, capsys):
    """Started from a working directory with relative --data and --space, at a storage URI (file:// standing in for
    S3); the driver and everything it started killed once two trials have reported; the space file edited; then a
    new head (an empty cache) resumes from another directory with the options the study was started with (refused
    with one that differs). Tables, Optuna journal, report and every trial's folder end up complete at the storage;
    resuming the finished study runs nothing again; a copy of the study elsewhere is refused with the reason."""
    work, bucket, name = tmp_path / "work", tmp_path / "bucket", "headless"
    work.mkdir()
    (work / "data").symlink_to(data)
    (work / "mine.yaml").write_text(SMOKE)
    start = ["--space", "mine.yaml", "--subset", "kinetics-motion", "--data", "data", "--num-samples", "4",
             "--storage", f"file://{bucket}", "--name", name, "--address", cluster]
    driver = _driver([*start, "--no-report"], work, STGCN_STUDY_CACHE=str(tmp_path / "old-head"))
    remote = bucket / name
    _kill_when(driver, lambda: _epochs(remote)["trial_id"].nunique() >= 2, "two trials reported")
    before = _epochs(remote)
    finished = read_frame(remote, TRIALS).query("status == 'terminated'")["trial_id"]
    assert (before["data_source"] == "synthetic").all()  # the trials found the relative --data

    (work / "mine.yaml").write_text(SMOKE.replace("trials: 4", "trials: 4\nbogus: 1"))  # edited after the start
    monkeypatch.setenv("STGCN_STUDY_CACHE", str(tmp_path / "new-head"))
    resume = ["--space", "mine", "--storage", f"file://{bucket}", "--name", name, "--resume", "--address", cluster]
    assert main([*resume, "--data", str(tmp_path)]) == 2
    assert "--data: " in capsys.readouterr().err
    assert main([*resume, "--num-samples", "4", "--seed", "0"]) == 0
    said = capsys.readouterr().out
    assert "kinetics-motion: 4 trials" in said
    local = tmp_path / "new-head" / "studies" / name
    answer = answer_lines(json.loads((local / "report" / "summary.json").read_text()))
    assert "\n".join(answer) in said  # the console closes with the page's answer, word for word
    for root in (local, remote):
        trials = read_frame(root, TRIALS)
        assert len(trials) == 4 and (trials["status"] == "terminated").all(), root
        check_optuna_agrees(root)
        assert not any(t.state == TrialState.RUNNING for t in optuna_trials(root))
    after = _epochs(local)
    assert not after.duplicated(["trial_id", "epoch"]).any()
    counts = after.groupby("trial_id")["epoch"].agg(["max", "count"])
    assert (counts["max"] == counts["count"]).all()  # every epoch 1..n, none lost
    for trial_id, rows in before.groupby("trial_id"):  # a trial with a checkpoint does not start over
        first = after[(after["trial_id"] == trial_id) & (after["epoch"] == 1)]
        assert first["recorded_at"].tolist() == rows.loc[rows["epoch"] == 1, "recorded_at"].tolist()
    for trial_id in finished:  # a finished trial is not run again
        assert after.loc[after["trial_id"] == trial_id, "recorded_at"].tolist() == \
            before.loc[before["trial_id"] == trial_id, "recorded_at"].tolist()
    sheet = pd.read_excel(local / "report" / "[kinetics-skeleton]implem_details_ST-GCN.xlsx", sheet_name=None)
    assert len(sheet["kinetics-motion"]) == 4
    assert (remote / "study.json").is_file() and (remote / "report" / "index.html").is_file()
    done = read_frame(remote, TRIALS)
    for folder in done["folder"]:  # each trial's folder, synced by Tune inside its trial directory
        assert len(list(remote.glob(f"search/*/{folder}/save_values_csv/epochs.csv"))) == 1

    assert main(["--space", "smoke", "--storage", f"file://{bucket}", "--name", name]) == 2  # without --resume
    assert "already exists; pass --resume" in capsys.readouterr().err
    assert main([*resume, "--no-report"]) == 0
    assert read_frame(remote, TRIALS)["updated_at"].tolist() == done["updated_at"].tolist()

    shutil.copytree(remote, tmp_path / "elsewhere" / name)  # e.g. the bucket's study downloaded
    assert main(["--space", "mine", "--storage", str(tmp_path / "elsewhere"), "--name", name, "--resume"]) == 2
    assert f"the study was started at file://{remote} and is now at {tmp_path / 'elsewhere' / name}" in \
        capsys.readouterr().err


BAD_SAMPLES = """
base: {optimizer: sgd}
cpu_profile: {batch_size: 16, epochs: 2, scheduler: none, cap_per_class: 6, sample_images: 0}
params:
  lr: {type: choice, values: [1.0e+4, 0.05]}
  warmup_epochs: {type: choice, values: [0, 5]}
sampler: random   # seeded by the study seed 0: draws (0.05, 0), (0.05, 5), (1e4, 0)
asha: {grace_period: 1, reduction_factor: 2}
trials: 4
subsets: [kinetics-motion]
max_concurrent: 2
"""


def test_a_sample_the_config_refuses_errors_its_trial_only_and_optuna_is_told_how_each_trial_ended(
        cluster, data, tmp_path, monkeypatch, capsys):
    """Run from its directory with a relative --space and --storage: the study and its trials' folders land there."""
    (tmp_path / "bad.yaml").write_text(BAD_SAMPLES)
    monkeypatch.chdir(tmp_path)
    assert main(["--space", "bad.yaml", "--data", str(data), "--storage", "studies", "--name", "bad",
                 "--max-failures", "2", "--no-report", "--address", cluster]) == SOME_ERRORED
    study = tmp_path / "studies" / "bad"
    trials = read_frame(study, TRIALS)
    err = capsys.readouterr().err.strip().splitlines()
    count = (trials["stop_reason"] == "errored").sum()
    assert err[-1].startswith(f"error: {count} of 4 trials errored (the first: kinetics-motion trial ")
    assert "--resume does not run them again" in err[-1]
    assert len(trials) == 4  # the paper recipe first, then three samples
    assert {"errored", "diverged", "completed"} <= set(trials["stop_reason"])
    errored = trials[trials["stop_reason"] == "errored"]
    assert errored["error"].str.contains("warmup_epochs").all() and errored["lr"].isna().all()
    assert (errored["retries"] == 0).all()  # refused once, although --max-failures allowed two retries
    assert (trials.loc[trials["stop_reason"] == "diverged", "lr"] == 1e4).all()
    for folder in trials.loc[trials["stop_reason"] == "completed", "folder"]:
        assert (study / "experiments" / folder / "save_values_csv" / "epochs.csv").is_file()
    check_optuna_agrees(study)
    diverged = [t for t in optuna_trials(study) if t.user_attrs.get("diverged")]
    assert diverged and all(t.state == TrialState.FAIL for t in diverged)


def test_a_study_whose_every_trial_fails_exits_non_zero_with_the_first_error(cluster, data, tmp_path, capsys):
    space = tmp_path / "never.yaml"
    space.write_text(BAD_SAMPLES.replace("values: [0, 5]", "values: [5]").replace("trials: 4", "trials: 2")
                     + "include_paper_recipe: false\n")
    assert main(["--space", str(space), "--data", str(data), "--storage", str(tmp_path), "--name", "never",
                 "--max-failures", "0", "--no-report", "--address", cluster]) == 1
    err = capsys.readouterr().err
    assert "every trial failed; the first: kinetics-motion trial 0:" in err and "warmup_epochs" in err


@pytest.mark.parametrize("args,message", [
    (["--data", "no/such/data"], "no/such/data: dataset directory not found"),
    (["--set", "lr=0.1"], "--set lr: the space smoke.yaml searches this parameter"),
    (["--set", "epochs=1"], "grace period 1 is not below the 1 epochs of this study's trials"),
    (["--address", "ray://head:10001"], "submit the study as a Ray Job instead"),
    (["--space", "declared.yaml"], "report_budget: epoch 5 is not a budget this study compares trials at (1, 2, 3:"),
])
def test_a_start_that_fails_leaves_no_study_directory(data, tmp_path, capsys, monkeypatch, args, message):
    (tmp_path / "declared.yaml").write_text(SMOKE + "report_budget: 5\n")
    monkeypatch.chdir(tmp_path)
    assert main(["--space", "smoke", "--data", str(data), "--storage", str(tmp_path / "studies"), "--name", "x",
                 *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "studies" / "x").exists()


def test_a_second_driver_on_a_running_study_is_refused(smoke, capsys):
    root, _ = smoke
    with driver_lock(root):
        assert main(["--space", "smoke", "--storage", str(root.parent), "--name", root.name, "--resume"]) == 2
    assert "another driver is running this study (pid" in capsys.readouterr().err


def test_optuna_learns_asha_stopped_trials_as_pruned_and_each_trial_says_how_it_was_sampled(smoke):
    root, trials = smoke
    check_optuna_agrees(root)
    startup = 1  # the smoke space's start-up: a quarter of its 4 trials
    for subset, rows in trials.groupby("subset"):
        labels = rows.sort_values("optuna_number")["sampled_by"].tolist()
        assert labels[0] == "paper recipe" and "tpe" in labels
        recorded = optuna_trials(root, subset)
        for trial in recorded[1:]:  # TPE's rule: random until `startup` trials were finished when it was asked
            finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED)
                           and t.datetime_complete <= trial.datetime_start for t in recorded)
            assert trial.user_attrs["sampled_by"] == ("random start-up" if finished < startup else "tpe")
        states = {t.state for t in recorded}
        assert TrialState.PRUNED in states or not (rows["stop_reason"] == "stopped_by_asha").any()


def test_a_storage_outage_fails_no_trial_and_every_last_checkpoint_reaches_the_storage_when_it_is_back(
        cluster, data, tmp_path):
    """Tune's whole storage (its experiment folder, where the checkpoints go) made unwritable while the trials train,
    even for root: a file stands where the folder was, so every write under it fails. The trials train on, each epoch
    is recorded, no trial is retried or errors; once the folder is back, each trial's newest checkpoint reaches it,
    the last one included, and the driver said once that the storage was out and once that it was back."""
    bucket, name = tmp_path / "bucket", "outage"
    cache = tmp_path / "cache"
    driver = subprocess.Popen(
        [sys.executable, "-m", "study.run", "--space", "smoke", "--subset", "kinetics-motion", "--num-samples", "2",
         "--set", "epochs=6", "--set", "cap_per_class=3", "--no-early-stopping", "--data", str(data),
         "--storage", f"file://{bucket}", "--name", name, "--address", cluster, "--no-report"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "STGCN_STUDY_CACHE": str(cache)})
    local, search = cache / "studies" / name, bucket / name / "search"

    def recorded() -> int:
        return len(_epochs(local))

    def wait_for(ready, what: str, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready() and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        ended = driver.poll() is not None
        assert ready(), f"{what}: the study " + (f"ended: {driver.stdout.read()[-3000:]}" if ended else "still runs")

    wait_for(lambda: recorded() >= 1 and search.is_dir(), "a first epoch recorded")
    away = search.with_name("search.away")
    search.rename(away)
    search.write_text("the storage is out")
    started = recorded()
    wait_for(lambda: recorded() >= started + 4, "four epochs recorded while the storage was out")
    search.unlink()
    away.rename(search)
    said, _ = driver.communicate(timeout=600)
    assert driver.returncode == 0, said[-3000:]
    trials = read_frame(local, TRIALS)
    assert (trials["stop_reason"] == "completed").all() and (trials["retries"] == 0).all(), trials[["stop_reason"]]
    assert said.count("could not upload its checkpoint") == 1 and said.count("takes the trials' checkpoints again") == 1
    for trial_id, epochs_run in zip(trials["trial_id"], trials["epochs_run"]):
        (folder,) = [p for p in search.iterdir() if p.is_dir() and p.name.endswith(trial_id)]
        newest = max((p for p in folder.glob("checkpoint_*") if (p / CHECKPOINT).is_file()), key=lambda p: p.name)
        assert torch.load(newest / CHECKPOINT, weights_only=False)["epoch"] == epochs_run
