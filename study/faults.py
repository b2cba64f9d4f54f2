"""Named moments of the driver where a fault can be injected, for the fault-injection harness (bench/bench_faults.py).

``STGCN_STUDY_FAULT=POINT:N:SIGNAL`` (for example ``tune.checkpoint_registered:3:KILL``) makes the driver send
itself SIGNAL (KILL or INT) the N-th time it passes POINT. Unset, ``point`` is a dictionary lookup and nothing else.
The points are the windows the README's guarantees are about: a checkpoint Tune registered (and its older one
deleted) before the experiment state that names it is saved; a result written locally but not yet copied to the
storage URI; a trial asked of Optuna but not yet known to Tune; the search over and the repeats not yet chosen; the
study done but not yet marked finished.
"""

from __future__ import annotations

import os
import signal

ENV = "STGCN_STUDY_FAULT"
POINTS = ("searcher.asked", "recorder.result_written", "recorder.trial_ended", "tune.checkpoint_registered",
          "mirror.copied_one", "driver.search_done", "driver.repeats_chosen", "driver.finishing")
_counts: dict[str, int] = {}


def _planned() -> tuple[str, int, int] | None:
    spec = os.environ.get(ENV)
    if not spec:
        return None
    name, count, sig = spec.split(":")
    if name not in POINTS:
        raise ValueError(f"{ENV}={spec}: unknown point {name!r}; known: {', '.join(POINTS)}")
    return name, int(count), {"KILL": signal.SIGKILL, "INT": signal.SIGINT}[sig]


def point(name: str) -> None:
    """Passing ``name``: the fault planned there, if this is its occurrence."""
    planned = _planned()
    if planned is None or planned[0] != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] == planned[1]:
        os.kill(os.getpid(), planned[2])


def install() -> None:
    """The one point inside Ray Tune: right after a trial's new checkpoint is registered (Tune deletes the one
    num_to_keep drops there) and before the experiment state that names the checkpoints is saved. Patched in only
    when a fault is planned at it."""
    planned = _planned()
    if planned is None or planned[0] != "tune.checkpoint_registered":
        return
    from ray.tune.experiment.trial import Trial
    original = Trial.on_checkpoint

    def on_checkpoint(self, checkpoint_result):
        original(self, checkpoint_result)
        point("tune.checkpoint_registered")

    Trial.on_checkpoint = on_checkpoint
