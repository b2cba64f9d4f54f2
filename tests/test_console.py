"""What the commands print while they run: every line of every trial, also of trials that run side by side; no
traceback when Ray stops a worker; progress lines to the standard error of the moment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ray._private.ray_logging import LogDeduplicator

from common import logs

ROOT = Path(__file__).resolve().parents[1]


def printed(deduplicator: LogDeduplicator, batches: list[dict]) -> list[str]:
    """The lines Ray's driver prints for these workers' batches, arriving within one aggregation window."""
    lines = [line for batch in batches for out in deduplicator.deduplicate(batch) for line in out["lines"]]
    return lines + [line for out in deduplicator.flush() for line in out["lines"]]


def two_trials_side_by_side() -> list[dict]:
    """Both subsets' first trials, one worker each, reporting their epochs at the same moments."""
    batches = []
    for epoch in (1, 2, 3):
        for pid, trial in ((101, "lr.kinetics-motion.0000"), (102, "lr.kinetics-392.0000")):
            text = f"epoch {epoch}: train loss 3.{epoch}1 top-1 {epoch}.1% | lr 0.0133 | 4.{epoch}s, 15{epoch} clips/s"
            batches.append({"ip": "10.0.0.1", "pid": pid, "job": "01", "is_err": False,
                            "lines": [logs.trial_line(trial, text)]})
    return batches


def test_ray_prints_every_line_of_trials_running_side_by_side():
    """Ray folds lines of two workers that differ only in numbers: with its defaults four of the six epoch lines
    are not printed as such (the premise); with the study's setting all six are."""
    batches = two_trials_side_by_side()
    expected = [line for batch in batches for line in batch["lines"]]
    folded = printed(LogDeduplicator(5, None, None, _timesource=lambda: 0.0), batches)
    assert len([line for line in folded if line in expected]) < len(expected)
    assert printed(LogDeduplicator(5, logs.TRIAL_LINE, None, _timesource=lambda: 0.0), batches) == expected


def test_study_run_sets_the_deduplication_before_ray_reads_it():
    """Ray reads the setting once, at its import: study.run sets it before it imports Ray."""
    code = ("import sys\nfrom study.run import main\nassert 'ray' not in sys.modules\n"
            "main(['--space', 'no-such-space'])\n"
            "from ray._private import ray_constants\nprint(ray_constants.RAY_DEDUP_LOGS_ALLOW_REGEX)")
    env = {k: v for k, v in os.environ.items() if k != logs.DEDUP_ALLOW}
    said = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert said.returncode == 0, said.stderr
    assert said.stdout.splitlines()[-1] == logs.TRIAL_LINE


def test_a_users_own_deduplication_setting_wins(monkeypatch):
    monkeypatch.setenv(logs.DEDUP_ALLOW, "mine")
    logs.keep_trial_lines()
    assert os.environ[logs.DEDUP_ALLOW] == "mine"
    monkeypatch.delenv(logs.DEDUP_ALLOW)
    logs.keep_trial_lines()
    assert os.environ[logs.DEDUP_ALLOW] == logs.TRIAL_LINE


STOP_INSIDE_A_CALLBACK = """
import os, signal, sys, weakref
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # what Ray's worker does on SIGTERM
if sys.argv[1] == "trial":
    from study.trainable import quiet_stop_signal
    quiet_stop_signal()

class Held:
    pass

def stopped_here(_):  # Ray's SIGTERM arriving while Python runs a weakref callback
    os.kill(os.getpid(), signal.SIGTERM)
    sum(range(100_000))

def fails_here(_):
    raise ValueError("a real error in a callback")

first, second = Held(), Held()
refs = weakref.ref(first, stopped_here), weakref.ref(second, fails_here)
del first, second
print("went on")
"""


def test_a_trial_worker_stopped_by_ray_prints_no_traceback():
    """Ray's SIGTERM landing inside a weakref callback: Python prints "Exception ignored ... SystemExit" (the
    premise, in a plain process); in a trial's process that report is dropped, and other errors still show."""
    def run(mode: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", STOP_INSIDE_A_CALLBACK, mode], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)

    plain, trial = run("plain"), run("trial")
    assert "SystemExit" in plain.stderr and "ValueError" in plain.stderr
    assert trial.stdout == "went on\n"
    assert "SystemExit" not in trial.stderr and "Traceback" in trial.stderr
    assert "ValueError: a real error in a callback" in trial.stderr


def test_progress_lines_go_to_the_standard_error_of_the_moment(monkeypatch):
    """Progress lines go to sys.stderr as it is when they print, not as it was when the module was imported: a stream
    replaced since (a test's capture, closed after it) made a later data generation fail on a closed file."""
    import io

    from common.progress import Progress
    progress = Progress("synth train", 2, every_s=0.0)
    now = io.StringIO()
    monkeypatch.setattr(sys, "stderr", now)
    progress.advance(2)
    assert now.getvalue().startswith("synth train: 2/2 (100.0%)")
