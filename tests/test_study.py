"""The study runner through real Ray (the session's local 2-CPU cluster), real Optuna, real files."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from ray import cloudpickle
from ray.tune import ExperimentAnalysis

from study.driver import run_study, waiting_trials
from study.run import main
from study.study_dir import StudyDirError, StudyLocation
from study.trainable import trial_epochs
from training.config import TrainConfig
from training.results import EPOCHS, METRIC_TYPES, TRIALS, optuna_journal, read_frame

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_study_records_every_trial_and_asha_stops_some(smoke):
    root, trials = smoke
    epochs = read_frame(root, EPOCHS)
    assert sorted(trials["subset"].unique()) == ["kinetics-392", "kinetics-motion"]
    assert (trials.groupby("subset").size() == 4).all()
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
    epochs = read_frame(root, EPOCHS)
    for subset, rows in trials.groupby("subset"):
        expected = asha_stops(epochs[epochs["subset"] == subset], grace=1, factor=2, max_t=3)
        recorded = rows[rows["stop_reason"] == "stopped_by_asha"].set_index("trial_id")["epochs_run"].to_dict()
        assert recorded == expected


def test_parquet_tables_match_tunes_own_results(smoke):
    root, trials = smoke
    epochs = read_frame(root, EPOCHS)
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


def test_pandas_reads_the_tables_with_their_types(smoke):
    """Times as UTC timestamps, integers with gaps as nullable integers, labels as categories, as docs/running.md says."""
    root, trials = smoke
    table = pd.read_parquet(root / TRIALS)
    for column in ("started_at", "updated_at"):
        assert str(table[column].dtype) == "datetime64[us, UTC]"
        assert (table[column] > pd.Timestamp("2020-01-01", tz="UTC")).all()
    assert (table["updated_at"] >= table["started_at"]).all()
    for column in ("optuna_number", "best_epoch", "epochs_planned", "index"):
        assert str(table[column].dtype) == "Int64"
    assert table["optuna_number"].dropna().tolist() == trials["optuna_number"].dropna().astype(int).tolist()
    for column in ("subset", "stop_reason", "status", "optimizer", "sampled_by", "data_source"):
        assert isinstance(table[column].dtype, pd.CategoricalDtype), column
    assert set(table["stop_reason"].cat.categories) <= {"completed", "stopped_by_asha", "diverged", "errored"}
    assert not isinstance(table["trial_id"].dtype, pd.CategoricalDtype)  # ids stay text
    epochs = pd.read_parquet(root / EPOCHS)
    assert str(epochs["recorded_at"].dtype) == "datetime64[us, UTC]" and str(epochs["epoch"].dtype) == "Int64"


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
    for folder in trials.loc[trials["stop_reason"] == "completed", "folder"]:  # curves drawn at a trial's end only:
        assert (root / "experiments" / folder / "matplotlib_graphs" / "accuracy.png").is_file()
    for folder in trials.loc[trials["stop_reason"] == "stopped_by_asha", "folder"]:  # the report draws these
        assert not (root / "experiments" / folder / "matplotlib_graphs" / "accuracy.png").exists()
    for folder in trials["folder"]:
        path = root / "experiments" / folder
        assert json.loads((path / "log" / "config.json").read_text())["data_source"] == "synthetic"
        # Sample predictions drawn after the trial's last epoch, also where ASHA stopped it (at one of its rungs).
        sample, table = path / "images_independant" / "sample_0.png", path / "save_values_csv" / "epochs.csv"
        assert sample.stat().st_mtime_ns >= table.stat().st_mtime_ns


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
    epochs = read_frame(location.root, EPOCHS)
    assert epochs["epoch"].tolist() == [1, 2, 3]
    log = (location.root / "experiments" / row["folder"] / "log" / "train.log").read_text()
    assert "after epoch 2" in log and log.count("epoch 1:") == 1


def test_epochs_not_validated_are_recorded_without_scores_and_the_study_still_judges_and_reports(cluster, data,
                                                                                                tmp_path, smoke_request):
    """eval_interval 2 over 3 epochs, no early stopping: epoch 1 is recorded with its training figures and no
    validation scores, epochs 2 and 3 with theirs; the trial is Optuna's COMPLETE with its last score and only the
    validated epochs as intermediate values; the report builds, its curves joining the validated epochs."""
    from reports.build import build
    from reports.sensitivity import learning_curves
    location = StudyLocation(tmp_path, "sparse")
    trials = run_study(location, smoke_request(data, "--subset", "kinetics-motion", "--num-samples", "1",
                                               "--no-early-stopping", "--set", "eval_interval=2"),
                       echo=lambda line: None)
    epochs = read_frame(location.root, EPOCHS).sort_values("epoch")
    assert epochs["epoch"].tolist() == [1, 2, 3]
    assert epochs["val_top1"].isna().tolist() == [True, False, False]
    assert epochs["train_loss"].notna().all()
    row = trials.iloc[0]
    assert row["stop_reason"] == "completed" and row["last_val_top1"] == epochs["val_top1"].iloc[-1]
    storage = JournalStorage(JournalFileBackend(str(optuna_journal(location.root, "kinetics-motion"))))
    (recorded,) = optuna.load_study(study_name="kinetics-motion", storage=storage).trials
    assert recorded.state == optuna.trial.TrialState.COMPLETE and recorded.value == row["last_val_top1"]
    assert sorted(recorded.intermediate_values) == [2, 3]
    out = build(location.root)
    summary = json.loads((out / "summary.json").read_text())
    curve = summary["trials"][0]["curve"]
    assert curve[0] is None and curve[1:] == pytest.approx(epochs["val_top1"].iloc[1:].tolist())
    assert (out / "plots" / "learning_curves.png").is_file()
    assert learning_curves(summary, tmp_path / "plots").points["x"].tolist() == [2, 3]  # what the curve shows


def test_tune_may_hold_as_many_waiting_trials_as_the_searcher_hands_out_and_a_users_setting_wins(monkeypatch):
    """Ray's TUNE_MAX_PENDING_TRIALS_PG while a study fits: subsets x max_concurrent, gone afterwards; the user's own
    value stays as it is."""
    name = "TUNE_MAX_PENDING_TRIALS_PG"
    monkeypatch.delenv(name, raising=False)
    with waiting_trials(4):
        assert os.environ[name] == "4"
    assert name not in os.environ
    monkeypatch.setenv(name, "16")
    with waiting_trials(4):
        assert os.environ[name] == "16"
    assert os.environ[name] == "16"


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


def _worker_pids(root: Path, trials: pd.DataFrame) -> list[int]:
    return [json.loads((root / "experiments" / f / "log" / "config.json").read_text())["worker_pid"]
            for f in trials["folder"]]


def test_seed_repeats_rerun_the_best_configs_with_new_seeds_to_the_last_epoch_in_reused_workers(
        cluster, data, tmp_path, smoke_request, smoke):
    """After the search, the two best configs again with seeds 1 and 2; the driver's summary and the report compare
    them from the repeat runs alone. Later trials run in finished trials' workers (Tune's actors are reused)."""
    location, said = StudyLocation(tmp_path, "noise"), []
    trials = run_study(location, smoke_request(data, "--subset", "kinetics-motion", "--num-samples", "3",
                                               "--repeats", "2", "--seeds", "2", "--set", "epochs=2"),
                       echo=said.append)
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
    for phase in (search, repeats):  # two trials at a time: two workers per phase serve them all
        assert len(set(_worker_pids(location.root, phase))) == 2
    from reports.build import build
    out = build(location.root)
    page = (out / "index.html").read_text()
    assert "repeat runs of 2 configs" in page and "(repeat seeds only)" in page
    compared = json.loads((out / "summary.json").read_text())["tables"]["seed_comparisons"]["rows"]
    assert len(compared) == 1 and compared[0]["a_repeats"] == compared[0]["b_repeats"] == 2  # the repeat runs alone
    assert said[-1].startswith("kinetics-motion: 3 trials; ")  # the driver's last words: how the trials ended,
    assert said[-1].endswith("; 4 seed repeats: 4 completed")  # the search's, then the repeats'


FRESH_PROCESS_TRIAL = """
import json, sys
from pathlib import Path
import torch
from kinetics.source import open_data
from training.config import from_dict
from training.experiment import Experiment
torch.set_num_threads(1)  # as the trial had: the smoke space gives each trial one CPU
config = from_dict(json.loads(sys.argv[1]), source="the trial's config.json")
experiment = Experiment(config, open_data(config.data), Path(sys.argv[2]), watched=False)
for _ in range(int(sys.argv[3])):
    experiment.step()
print(json.dumps(experiment.trainer.history))
"""


def test_a_trial_in_a_reused_worker_scores_exactly_as_in_a_new_process(smoke, tmp_path):
    """Tune reuses a finished trial's actor for the next trial (the default). What that worker holds from its earlier
    trials (the random generators' state, the open dataset of the other subset, the earlier trial's model, optimizer
    and open log files) must not touch the later trial: trained again in a new process, it gives the same numbers."""
    root, trials = smoke
    ordered = trials.assign(pid=_worker_pids(root, trials)).sort_values("started_at").reset_index(drop=True)
    reused = ordered[ordered.duplicated("pid")]  # trials that started in the worker of an earlier trial
    assert not reused.empty

    def after_the_other_subset(i: int) -> bool:
        before = ordered.loc[:i - 1]
        return bool(set(before.loc[before["pid"] == ordered.loc[i, "pid"], "subset"]) - {ordered.loc[i, "subset"]})

    row = ordered.loc[([i for i in reused.index if after_the_other_subset(i)] or list(reused.index))[-1]]
    run = json.loads((root / "experiments" / row["folder"] / "log" / "config.json").read_text())
    fresh = subprocess.run([sys.executable, "-c", FRESH_PROCESS_TRIAL, json.dumps(run["config"]), str(tmp_path),
                            str(int(row["epochs_run"]))], capture_output=True, text=True, check=True)
    again = pd.DataFrame(json.loads(fresh.stdout.splitlines()[-1]))
    epochs = read_frame(root, EPOCHS)
    recorded = epochs[epochs["trial_id"] == row["trial_id"]].sort_values("epoch").reset_index(drop=True)
    assert len(recorded) == len(again) == row["epochs_run"]
    for metric in ("train_loss", "train_top1", "val_loss", "val_top1", "val_top5"):  # NaN where it diverged
        np.testing.assert_array_equal(recorded[metric].to_numpy(float), again[metric].to_numpy(float), metric)


def test_both_subsets_run_side_by_side_in_one_tune_experiment(smoke):
    """No subset waits for the other to finish: their trials overlap in time, in one Tune experiment."""
    root, trials = smoke
    spans = trials.groupby("subset").agg(start=("started_at", "min"), end=("updated_at", "max"))
    assert spans.loc["kinetics-392", "start"] < spans.loc["kinetics-motion", "end"]
    assert spans.loc["kinetics-motion", "start"] < spans.loc["kinetics-392", "end"]
    assert sorted(p.name for p in root.iterdir() if (p / "tuner.pkl").is_file()) == ["search"]


GROWING_SPACE = """
description: a one-parameter space-filling design, small enough to grow twice in a test
base: {optimizer: sgd}
cpu_profile: {batch_size: 16, epochs: 2, scheduler: none, cap_per_class: 6, sample_images: 0}
params:
  lr: {type: loguniform, low: 1.0e-3, high: 0.3}
sampler: qmc
asha: {grace_period: 1, reduction_factor: 2}
trials: 2
subsets: [kinetics-motion]
max_concurrent: 1
include_paper_recipe: false
"""


def test_add_trials_then_seed_repeats_grow_a_finished_study_where_its_search_left_off(cluster, data, tmp_path, capsys,
                                                                                       monkeypatch):
    """--resume --add-trials N: N more trials per subset in the same study. The trials that ran are not run again,
    the QMC design goes on with its sequence (the learning rates are those a study of the larger size draws), and
    study.json holds the new size. Refused where it cannot hold: without --resume, with a size asked by
    --num-samples, while another driver runs the study. --resume --repeats K --seeds N then adds seed repeats, which
    a plain --resume carries on after an interruption."""
    space = tmp_path / "growing.yaml"
    space.write_text(GROWING_SPACE)
    args = ["--space", str(space), "--data", str(data), "--storage", str(tmp_path), "--name", "grows", "--no-report"]
    assert main(args) == 0
    root = tmp_path / "grows"
    before_trials, before_epochs = read_frame(root, TRIALS), read_frame(root, EPOCHS)
    assert len(before_trials) == 2

    assert main([*args, "--add-trials", "2"]) == 2
    assert "it grows an existing study: add --resume" in capsys.readouterr().err
    assert main([*args, "--resume", "--num-samples", "4"]) == 2
    assert "to run more trials in it: --add-trials 2" in capsys.readouterr().err
    from study.study_dir import driver_lock
    with driver_lock(root):
        assert main([*args, "--resume", "--add-trials", "2"]) == 2
    assert "another driver" in capsys.readouterr().err

    assert main([*args, "--resume", "--add-trials", "2"]) == 0
    trials, epochs = read_frame(root, TRIALS), read_frame(root, EPOCHS)
    assert sorted(trials["index"]) == [0, 1, 2, 3] and trials["trial_id"].is_unique
    kept = trials.set_index("trial_id").loc[before_trials["trial_id"]]
    assert (kept["updated_at"].to_numpy() == before_trials.set_index("trial_id")["updated_at"].to_numpy()).all()
    first_two = epochs[epochs["trial_id"].isin(before_trials["trial_id"])]
    assert len(first_two) == len(before_epochs)  # no epoch of theirs ran again
    assert json.loads((root / "study.json").read_text())["request"]["num_samples"] == 4

    from study.searcher import make_sampler
    from study.spaces import load_space
    design = optuna.create_study(direction="maximize", sampler=make_sampler("qmc", 0, 0))
    for _ in range(4):  # one at a time, each told as it ended, as the study's single trial slot did
        trial = design.ask()
        load_space(space).define_by_run(trial)
        design.tell(trial, 0.5)
    drawn = trials.sort_values("index")["lr"].tolist()
    assert drawn == pytest.approx([t.params["lr"] for t in design.trials], rel=1e-12)
    journal = optuna.load_study(study_name="kinetics-motion", storage=JournalStorage(JournalFileBackend(
        str(optuna_journal(root, "kinetics-motion")))))
    assert len(journal.trials) == 4 and all(t.state.is_finished() for t in journal.trials)

    # Then seed repeats, added as the report's next step asks: the best config again with two new seeds, chosen from
    # the search as it ended, to its last epoch; the search's trials stay as they were, and its size is now fixed.
    assert main([*args, "--resume", "--repeats", "1"]) == 2
    assert "give both, each at least 1" in capsys.readouterr().err
    from study import faults  # Ctrl-C once the repeats are chosen: study.json holds them, a plain --resume runs them
    monkeypatch.setattr(faults, "_counts", {})
    monkeypatch.setenv(faults.ENV, "driver.repeats_chosen:1:INT")
    assert main([*args, "--resume", "--repeats", "1", "--seeds", "2"]) == 130
    assert read_frame(root, TRIALS)["repeat_of"].isna().all()
    monkeypatch.delenv(faults.ENV)
    assert main([*args, "--resume"]) == 0
    after = read_frame(root, TRIALS)
    repeats, search = after[after["repeat_of"].notna()], after[after["repeat_of"].isna()].set_index("trial_id")
    ranked = trials.assign(completed=trials["stop_reason"] == "completed").dropna(subset=["last_val_top1"])
    best = ranked.sort_values(["completed", "last_val_top1"], ascending=False).iloc[0]
    assert set(repeats["repeat_of"]) == {best["trial_id"]} and sorted(repeats["seed"]) == [1, 2]
    assert (repeats["lr"] == best["lr"]).all() and (repeats["epochs_run"] == repeats["epochs_planned"]).all()
    assert (search.loc[trials["trial_id"], "updated_at"].to_numpy() ==
            trials.set_index("trial_id")["updated_at"].to_numpy()).all()
    request = json.loads((root / "study.json").read_text())["request"]
    assert (request["num_samples"], request["repeats"], request["seeds"]) == (4, 1, 2)
    assert main([*args, "--resume", "--repeats", "2", "--seeds", "2"]) == 2
    assert "--repeats: 2 differs from the study's 1" in capsys.readouterr().err
    assert main([*args, "--resume", "--add-trials", "2"]) == 2
    assert "re-ran its best configs with new seeds" in capsys.readouterr().err
