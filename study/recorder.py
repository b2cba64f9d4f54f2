"""A Tune callback on the driver that keeps the study's Parquet tables current as trials report.

It is the one place that decides a trial's stop reason: diverged (NaN loss), completed (ran its planned
epochs), stopped by ASHA (ended early any other way: the scheduler is the only thing that stops a trial
early), or errored (failed after its retries).
"""

from __future__ import annotations

from pathlib import Path

from ray.tune import Callback

from study.mirror import Mirror
from study.results import TrialRecord, reload, write_record
from study.study_dir import OPTUNA_JOURNAL
from study.trainable import REPEAT_OF, TrialPlan


def stop_reason(record: TrialRecord) -> str:
    if not record.epochs:
        return "errored"
    last = record.epochs[max(record.epochs)]
    if last["diverged"]:
        return "diverged"
    return "completed" if last["epoch"] >= record.config.epochs else "stopped_by_asha"


class StudyRecorder(Callback):
    def __init__(self, study_dir: Path, plan: TrialPlan, data_source: str, echo=print, mirror: Mirror | None = None):
        self.study_dir, self.plan, self.data_source, self.echo = Path(study_dir), plan, data_source, echo
        self.mirror = mirror
        self.records: dict[str, TrialRecord] = {}

    def __getstate__(self) -> dict:
        """Tune pickles callbacks into its experiment state. The in-memory records are left out: a resumed
        driver reloads each trial's rows from its Parquet files, which are never older than the pickle."""
        return {"study_dir": self.study_dir, "plan": self.plan, "data_source": self.data_source, "mirror": self.mirror}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def record_for(self, trial) -> TrialRecord:
        record = self.records.get(trial.trial_id)
        if record is None:
            index = self.plan.index_of(str(trial))
            record = TrialRecord(self.plan.study, self.plan.subset, trial.trial_id, index,
                                 self.plan.experiment_id(index), self.plan.config_for(trial.config), self.data_source,
                                 repeat_of=trial.config.get(REPEAT_OF), sampled=dict(trial.config))
            reload(self.study_dir, record)
            self.records[trial.trial_id] = record
        return record

    def _write(self, record: TrialRecord, ended: bool = False) -> None:
        written = write_record(self.study_dir, record)
        if self.mirror:
            self.mirror.push(*written, *([self.study_dir / OPTUNA_JOURNAL] if ended else []))

    def on_trial_start(self, iteration, trials, trial, **info):
        self.record_for(trial)  # its start time: the first epoch's row then shows the trial's start-up cost

    def on_trial_result(self, iteration, trials, trial, result, **info):
        record = self.record_for(trial)
        record.add_epoch(result)
        self._write(record)

    def on_trial_complete(self, iteration, trials, trial, **info):
        record = self.record_for(trial)
        record.finish(stop_reason(record))
        self._write(record, ended=True)

    def on_trial_recover(self, iteration, trials, trial, **info):
        record = self.record_for(trial)
        record.retries += 1
        self._write(record)
        self.echo(f"{trial}: failed, retrying from its last checkpoint (retry {record.retries})")

    def on_trial_error(self, iteration, trials, trial, **info):
        record = self.record_for(trial)
        error = str(trial.get_error() or "unknown error").strip().splitlines()
        record.finish("errored", error[-1] if error else "unknown error")
        self._write(record, ended=True)
