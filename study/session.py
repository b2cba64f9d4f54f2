"""The study this driver process runs.

Tune pickles its callbacks, searcher and scheduler into the experiment (tuner.pkl) when a Tuner is created, and
unpickles them when the experiment is restored: on a new head, or in a resubmitted job with another working
directory. A path pickled with them would point at the old place. So the recorder and the searcher pickle no path
and look the study up here; the driver activates the study before it creates or restores any Tuner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from study.study_dir import StudyLocation
from study.trainable import TrialPlan


@dataclass(frozen=True)
class ActiveStudy:
    location: StudyLocation
    plans: dict[str, TrialPlan]  # subset -> its trials' plan
    data_source: str  # synthetic or real
    seed: int  # the study seed: samplers and training
    trials_per_subset: int  # the search's budget, as study.json holds it now (--add-trials raises it)
    echo: Callable[[str], None] = print
    # After a restore: the search trials Tune's saved state holds, Tune trial id -> (subset, Optuna number), for the
    # searcher to match its own state against (Tune copies the two to the storage one after the other).
    tune_trials: dict[str, tuple[str, int]] = field(default_factory=dict)

    def plan(self, subset: str) -> TrialPlan:
        return self.plans[subset]


_active: ActiveStudy | None = None


def activate(study: ActiveStudy) -> None:
    global _active
    _active = study


def active() -> ActiveStudy:
    if _active is None:
        raise RuntimeError("no study is active in this process: the driver activates one before it creates or "
                           "restores a Tune experiment")
    return _active
