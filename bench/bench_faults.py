"""Fault injection: kill the driver of a small study at seeded moments, resume it, and check every invariant.

    python -m bench.bench_faults --kills 30 --seed 0 [--data DIR] [--address HOST:PORT] [--keep DIR]

Each kill runs a small study (the smoke space on kinetics-motion, 3 trials of 3 epochs, ASHA, then the best config
re-run with one more seed) on file:// storage, and ends its driver one of two ways, drawn from the seed: SIGKILL or
SIGINT (Ctrl-C), either the N-th time the driver passes a named window (study/faults.py: a checkpoint registered
before the experiment state is saved, a result written but not copied to storage, a trial asked of Optuna before Tune
knows it, Tune's upload of its experiment state cut inside a file, the search done before the repeats are chosen,
...), or after a drawn number of seconds. Then it resumes the study, on the same head or on a new one (an empty
driver cache), and checks:

- the first run's exit: -9 for SIGKILL, 130 and status "interrupted" for SIGINT (0 when the study finished first);
- what the resuming head can know is the storage (a new head) or its own disk (the same head); against that:
- every trial has each epoch 1..n once; no epoch recorded before the kill was trained again (its row keeps the
  epoch's time; a trial that Tune forgot may start over only with the resume saying so);
- no row of a trial that had ended changed;
- a study killed before its study.json reached that place: the resume says there is nothing to resume, and no
  trial ran;
- one Optuna trial per table row, in the state its stop reason means, none left RUNNING;
- the resume exits 0, the study is "finished", the report builds, and the storage holds the driver's files as they
  are locally (tables, journals, manifest).

It prints "invariants held at K of N kill points" and each failure, and writes each kill point's outcome with the
machine to bench/results/bench_faults.json. The study's trials are tiny, so a kill point costs about a minute on
2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from bench import results
from training.results import EPOCHS, TRIALS, optuna_journal, read_frame

ROOT = Path(__file__).resolve().parents[1]
SPACE = """
description: the fault-injection harness's study (bench/bench_faults.py)
base: {}
cpu_profile: {batch_size: 16, epochs: 3, scheduler: none, cap_per_class: 6, sample_images: 0}
params:
  optimizer: {type: choice, values: [sgd, adam]}
  lr: {type: loguniform, low: 1.0e-3, high: 0.1}
sampler: tpe
asha: {grace_period: 1, reduction_factor: 2}
trials: 3
subsets: [kinetics-motion]
max_concurrent: 2
include_paper_recipe: true
"""
STATE_OF = {"completed": TrialState.COMPLETE, "stopped_by_asha": TrialState.PRUNED, "diverged": TrialState.FAIL,
            "errored": TrialState.FAIL}
# Windows and how many times a study of this size passes each (at most), to draw the occurrence from.
WINDOWS = {"searcher.asked": 3, "recorder.writing": 8, "recorder.result_written": 8, "recorder.trial_ended": 4,
           "tune.checkpoint_registered": 8, "tune.state_upload_cut": 6, "mirror.copied_one": 30,
           "driver.search_done": 1, "driver.repeats_chosen": 1, "driver.finishing": 1}


@dataclass(frozen=True)
class KillPoint:
    window: str | None  # a study/faults.py point, or None for a kill after ``after_s`` seconds
    occurrence: int
    signal: str  # KILL, INT, or ENOSPC (the disk fills under the write at that point: the driver stops itself)
    after_s: float
    new_head: bool

    def describe(self) -> str:
        where = f"{self.window} #{self.occurrence}" if self.window else f"after {self.after_s:.0f} s"
        what = "a full disk" if self.signal == "ENOSPC" else f"SIG{self.signal}"
        return f"{what} at {where}, resumed on {'a new' if self.new_head else 'the same'} head"


def draw(count: int, seed: int) -> list[KillPoint]:
    """Every window at least once (in turn), then at random; a quarter of the kills timed instead; SIGINT one in
    four; a new head every other resume."""
    rng = random.Random(seed)
    windows = list(WINDOWS)
    points = []
    for i in range(count):
        timed = i % 4 == 3
        window = None if timed else (windows[i % len(windows)] if i < 2 * len(windows) else rng.choice(windows))
        action = "ENOSPC" if window == "recorder.writing" else ("INT" if rng.random() < 0.25 else "KILL")
        points.append(KillPoint(window, rng.randint(1, WINDOWS[window]) if window else 0, action, rng.uniform(8, 45),
                                i % 2 == 1))
    return points


def _driver(args: list[str], env: dict, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "study.run", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def _tables(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not (root / TRIALS).is_dir():  # killed before any result: empty tables with the columns checked
        return (pd.DataFrame(columns=["trial_id", "stop_reason", "epochs_run", "last_val_top1", "updated_at"]),
                pd.DataFrame(columns=["trial_id", "epoch", "epoch_time_s"]))
    return read_frame(root, TRIALS), read_frame(root, EPOCHS)


def optuna_trials(root: Path, subset: str = "kinetics-motion") -> list:
    storage = JournalStorage(JournalFileBackend(str(optuna_journal(root, subset))))
    return optuna.load_study(study_name=subset, storage=storage).trials


def check_optuna_agrees(root: Path) -> None:
    """One Optuna trial per trials.parquet row, joined on the recorded number: same parameters, the state its stop
    reason means, the last score as value of a completed trial, every epoch's score as intermediate values; besides
    those only trials marked abandoned, failed."""
    trials = read_frame(root, TRIALS)
    trials = trials[trials["repeat_of"].isna()]  # seed repeats are not Optuna's
    epochs = read_frame(root, EPOCHS)
    for subset, rows in trials.groupby("subset"):
        every = optuna_trials(root, subset)
        # asked after Tune last saved its state and matched away on resume (study/searcher.py): failed, no row
        assert all(t.state == TrialState.FAIL for t in every if "abandoned" in t.user_attrs)
        recorded = {t.number: t for t in every if "abandoned" not in t.user_attrs}
        assert sorted(recorded) == sorted(rows["optuna_number"]), "one Optuna trial per Tune trial"
        for _, row in rows.iterrows():
            trial = recorded[row["optuna_number"]]
            assert trial.user_attrs["tune_trial_id"] == row["trial_id"]
            sampled = json.loads(row["sampled"])
            assert trial.params == {k: v for k, v in sampled.items() if k in trial.params} and trial.params
            assert trial.state == STATE_OF.get(row["stop_reason"]), f"{trial.state} for a trial {row['stop_reason']}"
            scores = epochs[epochs["trial_id"] == row["trial_id"]].set_index("epoch")["val_top1"].dropna()
            assert trial.intermediate_values == pytest.approx(scores.to_dict())
            if trial.state == TrialState.COMPLETE:
                assert trial.value == pytest.approx(row["last_val_top1"])


def run_point(point: KillPoint, work: Path, data: str, address: str, timeout_s: float = 600) -> list[str]:
    """One kill and resume; the invariants that failed (empty when all held)."""
    from study.faults import ENV
    name, bucket = "faults", work / "bucket"
    (work / "space.yaml").write_text(SPACE)
    common = ["--space", str(work / "space.yaml"), "--storage", f"file://{bucket}", "--name", name, "--address",
              address]
    first_head, second_head = work / "head-a", work / ("head-b" if point.new_head else "head-a")
    env = {"STGCN_STUDY_CACHE": str(first_head), "STGCN_STUDY_SYNC_TIMEOUT_S": "60"}
    if point.window:
        env[ENV] = f"{point.window}:{point.occurrence}:{point.signal}"
    driver = _driver([*common, "--data", data, "--repeats", "1", "--seeds", "1", "--no-report"], env, work)
    if point.window:
        first = driver.wait(timeout_s)
    else:
        try:
            first = driver.wait(point.after_s)
        except subprocess.TimeoutExpired:
            os.killpg(driver.pid, getattr(signal, f"SIG{point.signal}")) if point.signal == "KILL" else \
                os.kill(driver.pid, signal.SIGINT)
            first = driver.wait(timeout_s)
    if point.signal == "KILL":
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # what a dead driver leaves: nothing of its process group
        except ProcessLookupError:
            pass
    local_a = first_head / "studies" / name
    failures = []
    manifest = json.loads((local_a / "study.json").read_text()) if (local_a / "study.json").is_file() else {}
    finished_first = manifest.get("status") == "finished"
    if point.signal in ("INT", "ENOSPC") and not finished_first and first != 130:
        failures.append(f"{point.signal}: exit {first}, expected 130")
    if point.signal in ("INT", "ENOSPC") and not finished_first and manifest and manifest.get("status") != "interrupted":
        failures.append(f"{point.signal}: status {manifest.get('status')!r}, expected 'interrupted'")
    if point.signal == "KILL" and not finished_first and first not in (-9, 0):
        failures.append(f"SIGKILL: exit {first}")
    known = bucket / name if point.new_head else local_a  # what the resuming head can know: the storage, or its disk
    trials_before, epochs_before = _tables(known)
    second = subprocess.run([sys.executable, "-m", "study.run", *common, "--resume"], cwd=work, timeout=timeout_s,
                            capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "STGCN_STUDY_CACHE": str(second_head)})
    (work / "resume.log").write_text(second.stdout + second.stderr)  # kept with --keep, for a failure's story
    if not (known / "study.json").is_file():  # killed before the study existed there: nothing to resume, nothing ran
        if second.returncode != 2 or "nothing to resume" not in second.stderr:
            failures.append(f"a study that never reached {known}: resume exited {second.returncode}")
        if (bucket / name / "search").exists():
            failures.append("Tune's experiment is at the storage, the study's study.json is not")
        return failures
    if second.returncode != 0:
        return failures + [f"resume exited {second.returncode}: {second.stderr.strip().splitlines()[-1:]}"]
    local = second_head / "studies" / name
    return failures + check(local, bucket / name, trials_before, epochs_before, second.stdout)


def check(local: Path, remote: Path, trials_before: pd.DataFrame, epochs_before: pd.DataFrame,
          output: str) -> list[str]:
    failures = []
    trials, epochs = _tables(local)
    if json.loads((local / "study.json").read_text()).get("status") != "finished":
        failures.append("status is not 'finished' after the resume")
    if epochs.duplicated(["trial_id", "epoch"]).any():
        failures.append("an epoch recorded twice")
    counts = epochs.groupby("trial_id")["epoch"].agg(["max", "count"])
    if not (counts["max"] == counts["count"]).all():
        failures.append("a trial is missing an epoch")
    if not trials["stop_reason"].isin(list(STATE_OF)).all() or len(trials) < 4:  # every trial ended, none cut short
        failures.append(f"{len(trials)} trials, stop reasons {sorted(set(trials['stop_reason']))}")
    forgotten = set(trials_before["trial_id"]) - set(trials["trial_id"])
    kept = epochs_before[~epochs_before["trial_id"].isin(forgotten)]
    merged = kept.merge(epochs, on=["trial_id", "epoch"], how="left", suffixes=("", "_after"))
    # An epoch trained again takes another time; one only recorded again (sent with a trial's restored history)
    # keeps the time it took. Training is deterministic, so the scores would not tell.
    rerun = merged[merged["epoch_time_s"] != merged["epoch_time_s_after"]]
    if len(rerun):
        failures.append(f"epochs recorded before the kill were run again: {rerun[['trial_id', 'epoch']].values.tolist()}")
    if forgotten and not all(f"trial {t}: started after Tune last saved its state" in output for t in forgotten):
        failures.append(f"trials dropped without a word: {sorted(forgotten)}")
    # A forgotten trial's rows are removed whether or not it ended (an ASHA stop at a first rung can end it with the
    # epoch whose checkpoint Tune registered just before the kill); the resume must say so, checked above.
    ended = trials_before[trials_before["stop_reason"].isin(["completed", "stopped_by_asha", "diverged", "errored"])
                          & ~trials_before["trial_id"].isin(forgotten)]
    columns = ["trial_id", "stop_reason", "epochs_run", "last_val_top1", "updated_at"]
    after = trials.set_index("trial_id")
    for _, row in ended.iterrows():
        if row["trial_id"] not in after.index or \
                after.loc[row["trial_id"], columns[1:]].tolist() != row[columns[1:]].tolist():
            failures.append(f"the row of ended trial {row['trial_id']} changed")
    try:
        check_optuna_agrees(local)
    except AssertionError as exc:
        failures.append(f"Optuna disagrees with the tables: {str(exc).splitlines()[0]}")
    if not (local / "report" / "index.html").is_file():
        failures.append("no report")
    for name in ("study.json", "trials.parquet", "epochs.parquet", "optuna"):
        mine = {p.relative_to(local): p.read_bytes() for p in (local / name).rglob("*") if p.is_file()} \
            if (local / name).is_dir() else {Path(name): (local / name).read_bytes()}
        theirs = {p.relative_to(remote): p.read_bytes() for p in (remote / name).rglob("*") if p.is_file()} \
            if (remote / name).is_dir() else {Path(name): (remote / name).read_bytes()} if (remote / name).exists() \
            else {}
        mine = {k: v for k, v in mine.items() if not k.name.startswith(".")}
        theirs = {k: v for k, v in theirs.items() if not k.name.startswith(".")}
        if mine != theirs:
            failures.append(f"the storage's {name} differs from the driver's")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default="synthetic")
    parser.add_argument("--address", help="a running Ray cluster (default: start a local one with 2 CPUs)")
    parser.add_argument("--keep", type=Path, help="keep each kill point's study here")
    results.add_out_argument(parser, "bench_faults")
    args = parser.parse_args()
    import ray
    address = args.address or ray.init(address="local", num_cpus=2, include_dashboard=False,
                                       log_to_driver=False).address_info["gcs_address"]
    held, start, points = 0, time.perf_counter(), []
    for i, point in enumerate(draw(args.kills, args.seed)):
        work = Path(tempfile.mkdtemp(prefix=f"fault{i}-"))
        began = time.perf_counter()
        failures = run_point(point, work, args.data, address)
        held += not failures
        print(f"{i + 1:3d}. {point.describe()}: {'held' if not failures else 'FAILED: ' + '; '.join(failures)} "
              f"({time.perf_counter() - began:.0f} s)", flush=True)
        points.append({"kill": point.describe(), "failures": failures})
        if args.keep:
            shutil.copytree(work, args.keep / f"kill{i + 1}", symlinks=True)
        shutil.rmtree(work, ignore_errors=True)
    print(f"invariants held at {held} of {args.kills} kill points ({time.perf_counter() - start:.0f} s)")
    figures = {"kills": args.kills, "seed": args.seed, "data": args.data, "held": held, "points": points}
    print(f"written to {results.write('bench_faults', figures, results.command(), args.out)}")
    sys.exit(0 if held == args.kills else 1)


if __name__ == "__main__":
    main()
