"""The study runner through real Ray (the session's local 2-CPU cluster), real Optuna, real files."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from ray import cloudpickle
from ray.tune import ExperimentAnalysis

from study.driver import run_study
from study.run import main
from study.study_dir import StudyDirError, StudyLocation
from study.trainable import trial_epochs
from training.config import TrainConfig
from training.results import EPOCHS, METRIC_TYPES, TRIALS, optuna_journal, read_table

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_study_records_every_trial_and_asha_stops_some(smoke):
    root, trials = smoke
    epochs = read_table(root, EPOCHS).to_pandas()
    assert sorted(trials["subset"].unique()) == ["kinetics-392", "kinetics-motion"]
    assert (trials.groupby("subset").size() == 6).all()
    assert set(trials["stop_reason"]) <= {"completed", "stopped_by_asha"}
    assert (trials["stop_reason"] == "stopped_by_asha").any()
    assert not epochs.duplicated(["subset", "trial_id", "epoch"]).any()
    assert (trials["data_source"] == "synthetic").all() and (trials["seed"] == 0).all()
    assert trials["model_variant"].str.startswith("cpu-sized").all()
    for column in ("study", "subset", "trial_id", "experiment_id", "epoch", *METRIC_TYPES, "lr", "batch_size",
                   "optimizer", "scheduler", "weight_decay", "seed"):
        assert column in epochs.columns


def asha_stops(epochs: pd.DataFrame, grace: int, factor: int, max_t: int) -> dict[str, int]:
    """Ray's ASHA replayed on the recorded validation losses (the shipped spaces' rung metric): at each rung, in the
    order results reached the driver, a trial is stopped when its reward (minus its loss) is below the rung's
    cutoff, the (1 - 1/factor) quantile of the rewards recorded there before it. Returns trial id -> its rung."""
    rungs = [grace * factor ** k for k in range(int(math.log(max_t / grace, factor) + 1)) if grace * factor ** k < max_t]
    stopped: dict[str, int] = {}
    for rung in rungs:
        recorded: list[float] = []
        for _, row in epochs[epochs["epoch"] == rung].sort_values("recorded_at").iterrows():
            if row["trial_id"] in stopped:
                continue
            reward = -row["val_loss"]
            if recorded and reward < np.nanpercentile(recorded, (1 - 1 / factor) * 100):
                stopped[row["trial_id"]] = rung
            recorded.append(reward)
    return stopped


def test_the_trials_asha_stopped_are_those_its_rule_stops(smoke):
    root, trials = smoke
    epochs = read_table(root, EPOCHS).to_pandas()
    for subset, rows in trials.groupby("subset"):
        expected = asha_stops(epochs[epochs["subset"] == subset], grace=1, factor=2, max_t=3)
        recorded = rows[rows["stop_reason"] == "stopped_by_asha"].set_index("trial_id")["epochs_run"].to_dict()
        assert recorded == expected


def test_parquet_tables_match_tunes_own_results(smoke):
    root, trials = smoke
    epochs = read_table(root, EPOCHS).to_pandas()
    for subset in ("kinetics-motion", "kinetics-392"):
        analysis = ExperimentAnalysis(str(root / "search"))
        tune_rows = pd.concat(analysis.trial_dataframes.values(), ignore_index=True)
        tune_rows = tune_rows[tune_rows["trial_id"].isin(set(trials.loc[trials["subset"] == subset, "trial_id"]))]
        ours = epochs[epochs["subset"] == subset]
        merged = ours.merge(tune_rows[["trial_id", "epoch", "val_top1", "train_loss"]], on=["trial_id", "epoch"],
                            suffixes=("", "_tune"), validate="one_to_one")
        assert len(merged) == len(ours) == len(tune_rows)
        assert merged["val_top1"].tolist() == pytest.approx(merged["val_top1_tune"].tolist())
        assert merged["train_loss"].tolist() == pytest.approx(merged["train_loss_tune"].tolist())
        runs = ours.groupby("trial_id")["epoch"].agg(["max", "count"])
        assert (runs["max"] == runs["count"]).all()  # epochs 1..n, none missing
        summary = trials[trials["subset"] == subset].set_index("trial_id")
        assert summary.loc[runs.index, "epochs_run"].tolist() == runs["count"].tolist()


def test_conditional_parameters_only_exist_where_their_parent_allows(smoke):
    root, trials = smoke
    adam, sgd = trials[trials["optimizer"] == "adam"], trials[trials["optimizer"] == "sgd"]
    assert len(adam) and len(sgd)
    assert adam["momentum"].isna().all() and adam["nesterov"].isna().all() and adam["beta1"].notna().all()
    assert sgd["beta1"].isna().all() and sgd["momentum"].notna().all()
    for subset in ("kinetics-motion", "kinetics-392"):
        storage = JournalStorage(JournalFileBackend(str(optuna_journal(root, subset))))
        for trial in optuna.load_study(study_name=subset, storage=storage).trials:
            assert ("momentum" in trial.params) == (trial.params["optimizer"] == "sgd")
            assert ("beta1" in trial.params) == (trial.params["optimizer"] == "adam")


def test_paper_recipe_is_the_first_trial_of_each_subset(smoke):
    _, trials = smoke
    first = trials[trials["index"] == 0]
    assert len(first) == 2
    paper = TrainConfig()
    assert (first["optimizer"] == "sgd").all() and (first["lr"] == paper.lr).all()
    assert (first["momentum"] == paper.momentum).all() and first["nesterov"].all()


def test_experiment_folders_are_written_by_the_trials(smoke):
    root, trials = smoke
    for folder in trials["folder"]:
        path = root / "experiments" / folder
        assert (path / "save_values_csv" / "epochs.csv").is_file()
        assert (path / "matplotlib_graphs" / "accuracy.png").is_file()
        assert json.loads((path / "log" / "config.json").read_text())["data_source"] == "synthetic"


def test_rerunning_a_study_name_without_resume_is_refused(smoke, data, smoke_request):
    root, _ = smoke
    before = sorted(p.name for p in root.iterdir())
    with pytest.raises(StudyDirError, match="already exists; pass --resume"):
        run_study(StudyLocation(root.parent, root.name), smoke_request(data))
    assert sorted(p.name for p in root.iterdir()) == before


def flaky_trial(sampled: dict, plans) -> None:
    """Raises once, after the second epoch was reported with its checkpoint: Tune must retry from there."""
    plan = plans[sampled["subset"]]
    marker = Path(plan.experiments_dir).parent / f"failed-once-{plan.subset}"
    for metrics in trial_epochs(sampled, plans):
        if metrics["epoch"] == 2 and not marker.exists():
            marker.touch()
            raise RuntimeError("injected failure after epoch 2")


def test_a_trial_that_raises_is_retried_from_its_checkpoint_without_duplicate_epochs(cluster, data, tmp_path,
                                                                                     smoke_request):
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    location = StudyLocation(tmp_path, "flaky")
    trials = run_study(location, smoke_request(data, "--subset", "kinetics-motion", "--num-samples", "1"),
                       trainable=flaky_trial, echo=lambda line: None)
    assert (location.root / "failed-once-kinetics-motion").exists()
    row = trials.iloc[0]
    assert row["retries"] == 1 and row["stop_reason"] == "completed" and row["epochs_run"] == 3
    epochs = read_table(location.root, EPOCHS).to_pandas()
    assert epochs["epoch"].tolist() == [1, 2, 3]
    log = (location.root / "experiments" / row["folder"] / "log" / "train.log").read_text()
    assert "after epoch 2" in log and log.count("epoch 1:") == 1


def _rows(path: Path) -> int:
    return len(read_table(path, EPOCHS)) if (path / EPOCHS).is_dir() else 0


def test_a_study_resumes_after_its_driver_is_killed(cluster, data, tmp_path):
    command = [sys.executable, "-m", "study.run", "--space", "smoke", "--subset", "kinetics-motion", "--data",
               str(data), "--storage", str(tmp_path), "--name", "killed", "--num-samples", "3",
               "--max-concurrent", "1", "--address", cluster]
    driver = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 240
    while _rows(tmp_path / "killed") < 4 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert driver.poll() is None, "the study ended before it could be killed"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = read_table(tmp_path / "killed", EPOCHS).to_pandas()
    finished_before = read_table(tmp_path / "killed", TRIALS).to_pandas().query("status == 'terminated'")
    assert len(finished_before) >= 1

    assert main(["--space", "smoke", "--storage", str(tmp_path), "--name", "killed", "--resume", "--no-report",
                 "--address", cluster]) == 0
    trials = read_table(tmp_path / "killed", TRIALS).to_pandas()
    epochs = read_table(tmp_path / "killed", EPOCHS).to_pandas()
    assert len(trials) == 3 and (trials["status"] == "terminated").all()
    assert not epochs.duplicated(["trial_id", "epoch"]).any()
    kept = before.merge(epochs, on=["trial_id", "epoch"], suffixes=("", "_after"))
    assert len(kept) == len(before)  # no finished epoch lost
    for trial_id in finished_before["trial_id"]:  # finished trials were not run again
        assert kept.loc[kept["trial_id"] == trial_id, "recorded_at"].tolist() == \
            kept.loc[kept["trial_id"] == trial_id, "recorded_at_after"].tolist()
    counts = epochs.groupby("trial_id")["epoch"].agg(["max", "count"])
    assert (counts["max"] == counts["count"]).all()


def test_cli_rejects_unknown_space_and_bad_numbers(capsys, tmp_path):
    assert main(["--space", "no_such_space", "--storage", str(tmp_path)]) == 2
    assert "no such search space; known spaces:" in capsys.readouterr().err
    assert main(["--space", "smoke", "--num-samples", "0", "--storage", str(tmp_path)]) == 2
    assert "--num-samples must be >= 1" in capsys.readouterr().err
    assert main(["--space", "smoke", "--set", "bogus=1", "--storage", str(tmp_path)]) == 2
    assert "unknown field 'bogus'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_resume_of_a_study_that_does_not_exist_says_so(capsys, tmp_path):
    assert main(["--space", "smoke", "--storage", str(tmp_path), "--resume"]) == 2
    assert "no study of space 'smoke' to resume" in capsys.readouterr().err


def test_seed_repeats_rerun_the_best_configs_with_new_seeds_to_the_last_epoch(cluster, data, tmp_path, smoke_request):
    location, said = StudyLocation(tmp_path, "noise"), []
    trials = run_study(location, smoke_request(data, "--subset", "kinetics-motion", "--num-samples", "3",
                                               "--repeats", "2", "--seeds", "2"), echo=said.append)
    search, repeats = trials[trials["repeat_of"].isna()], trials[trials["repeat_of"].notna()]
    assert len(search) == 3 and len(repeats) == 4
    ranked = search.assign(completed=search["stop_reason"] == "completed")  # the study's score: the last epoch,
    best_two = ranked.sort_values(["completed", "last_val_top1"], ascending=False).head(2)  # completed trials first
    assert sorted(set(repeats["repeat_of"])) == sorted(best_two["trial_id"])
    for _, row in repeats.iterrows():
        origin = search.set_index("trial_id").loc[row["repeat_of"]]
        assert row["seed"] in (1, 2) and origin["seed"] == 0
        assert (row["optimizer"], row["lr"]) == (origin["optimizer"], origin["lr"])
        assert row["stop_reason"] == "completed" and row["epochs_run"] == row["epochs_planned"]
        assert row["experiment_id"] >= 15_000
    assert (location.root / "seeds").is_dir()
    from reports.build import build
    out = build(location.root)
    page = (out / "index.html").read_text()
    assert "repeat runs of 2 configs" in page and "(repeat seeds only)" in page
    summary = said[-1]  # the driver's last words: the comparison, from the repeat runs alone
    assert "Repeat seeds only, 95% Welch intervals" in summary and "over 2 and 2 repeat seeds" in summary


def test_a_study_at_a_storage_uri_keeps_tables_and_experiment_folders_there(cluster, data, tmp_path, monkeypatch):
    monkeypatch.setenv("STGCN_STUDY_CACHE", str(tmp_path / "cache"))  # the driver's local copy goes there
    remote = tmp_path / "bucket"
    assert main(["--space", "smoke", "--subset", "kinetics-motion", "--num-samples", "2", "--data", str(data),
                 "--storage", f"file://{remote}", "--name", "shared", "--address", cluster]) == 0
    study = remote / "shared"
    trials = read_table(study, TRIALS).to_pandas()
    assert len(trials) == 2 and (trials["status"] == "terminated").all()
    assert len(read_table(study, EPOCHS)) == trials["epochs_run"].sum()
    assert (study / "study.json").is_file() and optuna_journal(study, "kinetics-motion").is_file()
    assert (study / "report" / "index.html").is_file()
    for folder in trials["folder"]:  # each trial's folder, synced by Tune inside its trial directory
        assert len(list(study.glob(f"search/*/{folder}/save_values_csv/epochs.csv"))) == 1
    assert (tmp_path / "cache" / "studies" / "shared" / "trials.parquet").is_dir()
    assert main(["--space", "smoke", "--storage", f"file://{remote}", "--name", "shared", "--no-report"]) == 2
    shutil.rmtree(tmp_path / "cache")  # a new head: --resume fetches the driver's files from the storage
    assert main(["--space", "smoke", "--storage", f"file://{remote}", "--name", "shared", "--resume", "--no-report",
                 "--address", cluster]) == 0
    assert (tmp_path / "cache" / "studies" / "shared" / "study.json").is_file()
    assert read_table(study, TRIALS).to_pandas()["updated_at"].tolist() == trials["updated_at"].tolist()


def test_without_early_stopping_every_trial_runs_its_planned_epochs(cluster, data, tmp_path, smoke_request):
    trials = run_study(StudyLocation(tmp_path, "full"), smoke_request(
        data, "--subset", "kinetics-motion", "--num-samples", "3", "--no-early-stopping"), echo=lambda line: None)
    assert len(trials) == 3 and (trials["stop_reason"] == "completed").all()
    assert (trials["epochs_run"] == trials["epochs_planned"]).all()


def _worker_pids(root: Path, trials: pd.DataFrame) -> list[int]:
    return [json.loads((root / "experiments" / f / "log" / "config.json").read_text())["worker_pid"]
            for f in trials["folder"]]


def test_reused_actors_run_later_trials_in_the_first_ones_worker(cluster, data, tmp_path, smoke_request, smoke):
    root, trials = smoke
    assert len(set(_worker_pids(root, trials))) == len(trials)  # by default every trial has its own worker
    location = StudyLocation(tmp_path, "reuse")
    reused = run_study(location, smoke_request(data, "--subset", "kinetics-motion", "--num-samples", "3",
                                               "--max-concurrent", "1", "--reuse-actors"), echo=lambda line: None)
    assert len(reused) == 3 and (reused["status"] == "terminated").all()
    assert len(set(_worker_pids(location.root, reused))) == 1


def test_both_subsets_run_side_by_side_in_one_tune_experiment(smoke):
    """No subset waits for the other to finish: their trials overlap in time, in one Tune experiment."""
    root, trials = smoke
    spans = trials.groupby("subset").agg(start=("started_at", "min"), end=("updated_at", "max"))
    assert spans.loc["kinetics-392", "start"] < spans.loc["kinetics-motion", "end"]
    assert spans.loc["kinetics-motion", "start"] < spans.loc["kinetics-392", "end"]
    assert sorted(p.name for p in root.iterdir() if (p / "tuner.pkl").is_file()) == ["search"]
