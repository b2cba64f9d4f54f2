"""The search: per subset, Optuna proposes each Tune trial's hyperparameters and is told exactly how it ended.

Both subsets' trials run in one Tune experiment, so a cluster (or a laptop's second core) never idles while one
subset finishes its last trials: the searcher hands out the subset with the fewest trials in flight, each subset up
to its trial budget and its own concurrency limit, and each subset keeps its own Optuna study and journal.

Written against Optuna's ask/tell and storage API rather than Ray's OptunaSearch, which tells Optuna COMPLETE
for a trial ASHA stopped and leaves a diverged trial RUNNING (Optuna refuses its NaN). Here:

- completed: COMPLETE, valued by the last epoch's validation top-1 (the study's declared score);
- stopped by ASHA (ended healthy before its planned epochs): PRUNED, with the validation top-1 of every epoch as
  intermediate values, so TPE ranks it as it ranks trials its own pruners stop;
- diverged (NaN/inf loss) or errored: FAIL.

Every Optuna trial carries the Tune trial id and how it was sampled (user attributes), and Tune's config carries
the Optuna trial number, which trials.parquet records: analyses join on that number.

Each subset's journal travels with Tune's own experiment state: each time Tune saves its trials it saves this
searcher with a copy of the journals, and a restored experiment puts those copies back. So after a new head
resumes a study from remote storage, Optuna holds exactly the trials Tune knows, none RUNNING for ever.
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
from study import faults, session
from study.trainable import INDEX, RESTORED_HISTORY, SUBSET
from training.results import ENDED, optuna_journal, recorded

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


class SubsetSearch:
    """One subset's Optuna study: asks, reports, tells. Holds no path in its pickled state (study/session.py)."""

    def __init__(self, subset: str):
        self.subset = subset
        self.trials: dict[str, int] = {}  # Tune trial id -> Optuna trial number
        plan = session.active().plan(subset)
        self.queued = [plan.space.paper_point(plan.cpu_profile)] if plan.space.include_paper_recipe else []
        self._open()

    def __getstate__(self) -> dict:
        return {"subset": self.subset, "trials": self.trials, "queued": self.queued}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._open()

    def _open(self) -> None:
        active = session.active()
        self.space = active.plan(self.subset).space
        self.journal = optuna_journal(active.location.root, self.subset)
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        self.storage = JournalStorage(JournalFileBackend(str(self.journal)))
        self.study = optuna.create_study(
            study_name=self.subset, storage=self.storage, direction="maximize", load_if_exists=True,
            sampler=make_sampler(self.space.sampler, active.seed, self.space.startup_trials))
        if self.study.metric_names is None:  # what optuna-dashboard calls the objective, instead of "Objective 0"
            with warnings.catch_warnings():  # experimental since Optuna 3.2, unchanged through 5.0
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.set_metric_names([METRIC])
        self.study_id = self.storage.get_study_id_from_name(self.subset)

    def _storage_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def _trial_id(self, tune_trial_id: str) -> int:
        return self._storage_id(self.trials[tune_trial_id])

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
        faults.point("searcher.asked")
        return {**trial.params, OPTUNA_NUMBER: trial.number, SAMPLED_BY: label, SUBSET: self.subset,
                INDEX: trial.number}

    def report(self, trial_id: str, result: dict) -> None:
        """Every epoch's score as an intermediate value, those a killed driver had missed (restored_history) too."""
        if trial_id not in self.trials:
            return
        for epoch in [*(result.get(RESTORED_HISTORY) or []), result]:
            if _finite(epoch.get(METRIC)):
                self.storage.set_trial_intermediate_value(self._trial_id(trial_id), int(epoch["epoch"]),
                                                          float(epoch[METRIC]))

    def tell(self, trial_id: str, result: dict | None, error: bool) -> None:
        if trial_id not in self.trials or self.storage.get_trial(self._trial_id(trial_id)).state.is_finished():
            return  # not ours, or told already (Tune may report a completion twice around a restore)
        if not result and not error:  # a trial the resume stopped as the tables say it ended (study/tuners.py)
            result = self._as_recorded(trial_id)
        if result:
            self.report(trial_id, result)
            if result.get("diverged"):
                self.storage.set_trial_user_attr(self._trial_id(trial_id), "diverged", True)
        state = final_state(result, error)
        self.study.tell(self.trials[trial_id], float(result[METRIC]) if state == TrialState.COMPLETE else None,
                        state=state)

    def _as_recorded(self, trial_id: str) -> dict | None:
        """The trial's last epoch as the tables hold it, with every epoch before it, as a last result; None for an
        errored trial (FAIL)."""
        row, epochs = recorded(session.active().location.root, self.subset, trial_id)
        if row is None or not epochs or row["stop_reason"] == "errored":
            return None
        return {**epochs[-1], "epochs_planned": row["epochs_planned"], RESTORED_HISTORY: epochs}

    def journal_bytes(self) -> bytes:
        return self.journal.read_bytes() if self.journal.is_file() else b""

    def match(self, tune_trials: dict[str, int]) -> set[str]:
        """This subset's state from its journal, matched to the trials Tune resumes (Tune trial id -> Optuna number;
        see ``StudySearcher.restore``): an Optuna trial Tune does not know was asked after Tune's state was saved
        and will never run, so it is marked abandoned and failed; a trial whose row says it ended after Tune's state
        was saved is told as it ended; the paper recipe stays queued unless it was asked. Returns the Tune ids of the
        trials still running."""
        by_number = {t.number: t for t in self.study.get_trials(deepcopy=False)}
        self.trials = {tid: n for tid, n in tune_trials.items() if n in by_number}
        for tid in set(tune_trials) - set(self.trials):
            session.active().echo(f"{self.subset} trial {tid}: Optuna trial {tune_trials[tid]} is not in the journal; "
                                  "its result will not reach Optuna")
        for trial in by_number.values():
            tune_id = trial.user_attrs.get("tune_trial_id")
            if tune_id is not None and tune_id not in self.trials and trial.state == TrialState.RUNNING:
                self.storage.set_trial_user_attr(self._storage_id(trial.number), "abandoned", "asked after Tune last "
                                                 "saved its state; no Tune trial runs it")
                self.study.tell(trial.number, state=TrialState.FAIL)
        if any(by_number[n].user_attrs.get(SAMPLED_BY) == PAPER_RECIPE for n in self.trials.values()):
            self.queued = []
        return self.tell_ended()

    def tell_ended(self) -> set[str]:
        """Trials Optuna has running whose rows say they ended (the driver died between the row and the tell, or the
        journal was put back to before the end) are told as the tables hold them: Tune may never run them again.
        Returns the Tune ids of the trials still running."""
        running = set()
        for tid, number in self.trials.items():
            if self.storage.get_trial(self._storage_id(number)).state != TrialState.RUNNING:
                continue
            row, _ = recorded(session.active().location.root, self.subset, tid)
            if row is not None and row["stop_reason"] in ENDED:
                self.tell(tid, None, row["stop_reason"] == "errored")
            else:
                running.add(tid)
        return running

    def adopt_longer_journal(self, saved: bytes) -> None:
        """The journal saved with Tune's state or the one here, whichever holds more: both are beginnings of the
        same log (a new head's copy from the storage can lag the one Tune saved)."""
        if len(saved) > len(self.journal_bytes()):
            self.restore_journal(saved)

    def restore_journal(self, content: bytes) -> None:
        """Trials asked after the saved state (a driver that died in between) are not in Tune's state either, and
        would otherwise stay RUNNING with no Tune trial: the journal goes back to what was saved with it."""
        with atomic_path(self.journal) as tmp:
            tmp.write_bytes(content)
        self._open()


class StudySearcher(Searcher):
    def __init__(self, subsets: tuple[str, ...], max_concurrent: int):
        """Hands out the study's trials per subset (``budget``), at most ``max_concurrent`` of a subset at once,
        starting the subset with the fewest trials in flight."""
        super().__init__(metric=METRIC, mode=MODE)
        self.max_concurrent = max_concurrent
        self.searches = {subset: SubsetSearch(subset) for subset in subsets}
        self.owner: dict[str, str] = {}  # Tune trial id -> subset
        self.live: dict[str, set[str]] = {subset: set() for subset in subsets}

    @property
    def budget(self) -> int:
        """Read from the study, not pickled with the searcher: a study that grows (--add-trials) continues its search
        with the new budget, from the same Optuna studies (a QMC design goes on with its sequence)."""
        return session.active().trials_per_subset

    def has_trials_left(self) -> bool:
        """Whether a restored search that had said it was finished has trials to hand out again."""
        return any(len(search.trials) < self.budget for search in self.searches.values())

    def suggest(self, trial_id: str) -> dict | str | None:
        asked = {s: len(search.trials) for s, search in self.searches.items()}
        open_ = [s for s in self.searches if asked[s] < self.budget and len(self.live[s]) < self.max_concurrent]
        if not open_:
            return Searcher.FINISHED if all(n >= self.budget for n in asked.values()) else None
        subset = min(open_, key=lambda s: (len(self.live[s]), asked[s]))
        self.owner[trial_id] = subset
        self.live[subset].add(trial_id)
        return self.searches[subset].suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.owner:
            self.searches[self.owner[trial_id]].report(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Tune skips on_trial_result for the result its scheduler stops a trial on, so that epoch is reported
        here before the state is told."""
        if trial_id in self.owner:
            subset = self.owner[trial_id]
            self.live[subset].discard(trial_id)
            self.searches[subset].tell(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        """With Tune's experiment state: who owns which trial, and each subset's state and journal as it is now."""
        state = {"owner": self.owner, "live": self.live,
                 "searches": {s: (search.__getstate__(), search.journal_bytes()) for s, search in self.searches.items()}}
        with atomic_path(Path(checkpoint_path)) as tmp, open(tmp, "wb") as handle:
            pickle.dump(state, handle)

    def restore(self, checkpoint_path: str) -> None:
        """Tune copies its trials' state and this one to the storage one after the other, so a driver killed while
        it copied leaves them from different saves, or this one cut short (and Tune answers a restore that raises by
        starting the whole experiment over). When this state names exactly the trials Tune resumes, it is put back
        as saved, its journals too (trials asked after that save are not in Tune's state either: the journal goes
        back to before them). Otherwise the search is matched to Tune's trials from the journals, which hold the
        same facts (each trial's Tune id, how it was sampled, whether it still runs)."""
        try:
            with open(checkpoint_path, "rb") as handle:
                state = pickle.load(handle)
        except (EOFError, pickle.UnpicklingError) as exc:
            state, why = None, f"{checkpoint_path}: unreadable ({exc!r})"
        tune_trials = session.active().tune_trials
        if state is not None and (not tune_trials or set(state["owner"]) == set(tune_trials)):
            self.owner, self.live = state["owner"], state["live"]
            for subset, (own, journal) in state["searches"].items():
                search = self.searches[subset]
                search.trials, search.queued = own["trials"], own["queued"]
                search.restore_journal(journal)
                # Tune's state may be the newer of the two (copied one after the other): a trial it has ended
                # would stay running here for ever
                self.live[subset] &= search.tell_ended()
            return
        if state is not None:
            why = (f"{checkpoint_path}: saved with {len(state['owner'])} trials, Tune resumes {len(tune_trials)} (a "
                   "driver killed while Tune copied its state)")
        session.active().echo(f"{why}; the search is matched to Tune's trials from the Optuna journals")
        for subset, search in self.searches.items():
            if state is not None:
                search.adopt_longer_journal(state["searches"][subset][1])
            mine = {tid: number for tid, (owner, number) in tune_trials.items() if owner == subset}
            self.live[subset] = search.match(mine)
            self.owner.update({trial_id: subset for trial_id in search.trials})
