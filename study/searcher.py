"""The search: Optuna proposes each Tune trial's hyperparameters and is told exactly how the trial ended.

Written against Optuna's ask/tell and storage API rather than Ray's OptunaSearch, which tells Optuna COMPLETE
for a trial ASHA stopped and leaves a diverged trial RUNNING (Optuna refuses its NaN). Here:

- completed: COMPLETE, valued by the last epoch's validation top-1 (the study's declared score);
- stopped by ASHA (ended healthy before its planned epochs): PRUNED, with the validation top-1 of every epoch as
  intermediate values, so TPE ranks it as it ranks trials its own pruners stop;
- diverged (NaN/inf loss) or errored: FAIL.

Every Optuna trial carries the Tune trial id and how it was sampled (user attributes), and Tune's config carries
the Optuna trial number, which trials.parquet records: analyses join on that number.

Each subset's Optuna study has its own journal, which travels with Tune's own experiment state: each time Tune
saves its trials it saves this searcher with a copy of the journal, and a restored experiment puts that copy
back. So after a new head resumes a study from remote storage, Optuna holds exactly the trials Tune knows, none
RUNNING for ever.
"""

from __future__ import annotations

import math
import pickle
import warnings
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from ray.tune.search import Searcher

from common.files import atomic_path
from study import session
from training.results import optuna_journal

METRIC, MODE = "val_top1", "max"
# Keys of a Tune trial's config that are not TrainConfig fields: what the search adds about the trial itself.
OPTUNA_NUMBER, SAMPLED_BY = "optuna_number", "sampled_by"
PAPER_RECIPE, STARTUP = "paper recipe", "random start-up"

optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_sampler(kind: str, seed: int, startup_trials: int) -> optuna.samplers.BaseSampler:
    """``tpe`` models conditional spaces jointly (multivariate, grouped by which parameters exist) and, with
    several trials in flight, treats running trials as already scored (constant liar) so they are not proposed
    twice; ``qmc`` is a scrambled Sobol sequence, a space-filling design; ``random`` draws independently."""
    with warnings.catch_warnings():  # Optuna marks multivariate TPE, its options and QMC experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if kind == "tpe":
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                              n_startup_trials=startup_trials)
        if kind == "qmc":
            return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed,
                                              warn_independent_sampling=False)
        return optuna.samplers.RandomSampler(seed=seed)


def final_state(result: dict | None, error: bool) -> TrialState:
    """How a trial ended, from its last result: see the module docstring."""
    if error or not result or result.get("diverged") or not _finite(result.get(METRIC)):
        return TrialState.FAIL
    if int(result["epoch"]) < int(result["epochs_planned"]):
        return TrialState.PRUNED
    return TrialState.COMPLETE


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class StudySearcher(Searcher):
    def __init__(self, experiment: str):
        """``experiment``: the Tune experiment this searcher serves, named after its subset, which is also the
        Optuna study's name in the study's journal. Starts a new Optuna study (with the paper recipe queued
        first when the space asks for it)."""
        super().__init__(metric=METRIC, mode=MODE)
        self.experiment = experiment
        self.trials: dict[str, int] = {}  # Tune trial id -> Optuna trial number
        plan = session.active().plan(experiment)
        self.queued = [plan.space.paper_point(plan.cpu_profile)] if plan.space.include_paper_recipe else []
        self._open()

    def __getstate__(self) -> dict:
        """What Tune pickles into tuner.pkl: which experiment, never a path (see study/session.py)."""
        return {"experiment": self.experiment, "trials": self.trials, "queued": self.queued,
                "_metric": self._metric, "_mode": self._mode}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._open()

    def _open(self) -> None:
        active = session.active()
        plan = active.plan(self.experiment)
        self.space = plan.space
        self.journal = optuna_journal(active.location.root, self.experiment)
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        self.storage = JournalStorage(JournalFileBackend(str(self.journal)))
        self.study = optuna.create_study(
            study_name=self.experiment, storage=self.storage, direction="maximize", load_if_exists=True,
            sampler=make_sampler(self.space.sampler, active.seed, self.space.startup_trials))
        self.study_id = self.storage.get_study_id_from_name(self.experiment)

    def _trial_id(self, tune_trial_id: str) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, self.trials[tune_trial_id])

    def _sampled_by(self, queued: bool) -> str:
        if queued:
            return PAPER_RECIPE
        if self.space.sampler == "tpe":
            finished = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            if len(finished) < self.space.startup_trials:  # TPESampler's own rule for its random start-up
                return STARTUP
        return self.space.sampler

    def suggest(self, trial_id: str) -> dict:
        queued = bool(self.queued)
        if queued:
            self.study.enqueue_trial(self.queued.pop(0))
        label = self._sampled_by(queued)  # before the ask: TPE decides on the trials finished so far
        trial = self.study.ask()
        self.space.define_by_run(trial)
        trial.set_user_attr("tune_trial_id", trial_id)
        trial.set_user_attr(SAMPLED_BY, label)
        self.trials[trial_id] = trial.number
        return {**trial.params, OPTUNA_NUMBER: trial.number, SAMPLED_BY: label}

    def _report(self, trial_id: str, result: dict) -> None:
        if trial_id in self.trials and _finite(result.get(METRIC)):
            self.storage.set_trial_intermediate_value(self._trial_id(trial_id), int(result["epoch"]),
                                                      float(result[METRIC]))

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._report(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Tune skips on_trial_result for the result its scheduler stops a trial on, so that epoch is reported
        here before the state is told."""
        if trial_id not in self.trials:
            return
        number = self.trials[trial_id]
        if self.storage.get_trial(self._trial_id(trial_id)).state.is_finished():
            return  # told already (Tune may report a completion twice around a restore)
        if result:
            self._report(trial_id, result)
        state = final_state(result, error)
        if result and result.get("diverged"):
            self.storage.set_trial_user_attr(self._trial_id(trial_id), "diverged", True)
        value = float(result[METRIC]) if state == TrialState.COMPLETE else None
        self.study.tell(number, value, state=state)

    def save(self, checkpoint_path: str) -> None:
        """With Tune's experiment state: the trial map, what is still queued, and the journal as it is now."""
        with atomic_path(Path(checkpoint_path)) as tmp, open(tmp, "wb") as handle:
            pickle.dump({"trials": self.trials, "queued": self.queued,
                         "journal": self.journal.read_bytes() if self.journal.is_file() else b""}, handle)

    def restore(self, checkpoint_path: str) -> None:
        """Puts back the journal saved with the trials Tune restores: trials asked after that save (a driver that
        died in between) are not in Tune's state either, and would otherwise stay RUNNING with no Tune trial."""
        with open(checkpoint_path, "rb") as handle:
            state = pickle.load(handle)
        self.trials, self.queued = state["trials"], state["queued"]
        with atomic_path(self.journal) as tmp:
            tmp.write_bytes(state["journal"])
        self._open()
