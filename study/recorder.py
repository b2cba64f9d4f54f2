"""A Tune callback on the driver that keeps the study's Parquet tables current as trials report.

It is the one place that decides a trial's stop reason: errored (failed after its retries, or a config the
trainer refused), diverged (NaN/inf loss), stopped by ASHA (Tune marked a result before the planned last epoch
done: its scheduler said STOP there; the study sets no other stopper), or completed (ran its planned epochs).
"""

from __future__ import annotations

import errno
import signal

from ray.tune import Callback

from common import logs
from study import faults, session
from study.searcher import OPTUNA_NUMBER, SAMPLED_BY
from study.trainable import INDEX, REPEAT_OF, REPLAYED, RESTORED_HISTORY, STORAGE_BEHIND, STORAGE_ERROR, SUBSET
from training.config import ConfigError
from training.results import TrialRecord, optuna_journal, reload, write_record

log = logs.get("recorder")


def stop_reason(record: TrialRecord, stopped_by_scheduler: bool = False) -> str:
    if not record.epochs:
        return "errored"
    last = record.epochs[max(record.epochs)]
    if last["diverged"]:
        return "diverged"
    if stopped_by_scheduler:
        return "stopped_by_asha"
    return "completed" if record.config and last["epoch"] >= record.config.epochs else "interrupted"


class StudyRecorder(Callback):
    """Everything but the records comes from the active study (study/session.py), so a restored experiment records
    where the study is now."""

    def __init__(self):
        self.records: dict[str, TrialRecord] = {}
        self.storage_behind: set[str] = set()  # trials whose newest checkpoint waits for the storage
        self.stopping = False  # a full disk has asked the study to stop

    def __getstate__(self) -> dict:
        """Tune pickles callbacks into tuner.pkl; the in-memory records are left out: a resumed driver reloads
        each trial's rows from its Parquet files, which are never older than the pickle."""
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def record_for(self, trial) -> TrialRecord:
        record = self.records.get(trial.trial_id)
        if record is None:
            active = session.active()
            plan, index = active.plan(trial.config[SUBSET]), trial.config[INDEX]
            try:
                config, error = plan.config_for(trial.config), None
            except ConfigError as exc:  # the trial errors in its trainer; the study goes on
                config, error = None, str(exc)
            record = TrialRecord(plan.study, plan.subset, trial.trial_id, index, plan.experiment_id(index), config,
                                 active.data_source, repeat_of=trial.config.get(REPEAT_OF),
                                 optuna_number=trial.config.get(OPTUNA_NUMBER), sampled_by=trial.config.get(SAMPLED_BY),
                                 sampled=dict(trial.config), error=error)
            reload(active.location.root, record)
            self.records[trial.trial_id] = record
        return record

    def _write(self, record: TrialRecord, ended: bool = False) -> None:
        location = session.active().location
        try:
            faults.point("recorder.writing")
            written = write_record(location.root, record)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            self.disk_full(exc)
            return
        log.debug(f"{record.subset} trial {record.trial_id}: {len(record.epochs)} epoch(s) recorded"
                  f"{', ' + record.stop_reason if ended else ''}")
        faults.point("recorder.trial_ended" if ended else "recorder.result_written")
        journal = optuna_journal(location.root, record.subset)
        location.push(*written, *([journal] if journal.is_file() else []))

    def disk_full(self, exc: OSError) -> None:
        """A full disk stops the study as Ctrl-C does: Tune saves its state and the trials stop, the status says
        interrupted, and the resume command is printed. The result that could not be written travels with the trial's
        next report after the resume (its restored history), so nothing is lost once space is freed."""
        if not self.stopping:
            self.stopping = True
            session.active().echo(f"error: the disk of {session.active().location.root} is full ({exc.strerror}); the "
                                  "study stops here, its state saved: free space, then resume it")
            signal.raise_signal(signal.SIGINT)  # the driver's Ctrl-C handler: the same clean stop

    def on_trial_start(self, iteration, trials, trial, **info):
        if self.record_for(trial).error:  # its start time: the first epoch's row then shows the start-up cost
            trial.max_failures = 0  # a sample the config refuses fails the same way every time: error once

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.say_storage(trial, result)
        record = self.record_for(trial)
        for earlier in result.get(RESTORED_HISTORY) or []:  # epochs a killed driver had not recorded
            if int(earlier["epoch"]) not in record.epochs:
                record.add_epoch({**result, **earlier})
        if not result.get(REPLAYED):  # a replayed last epoch was recorded just above, or before the kill
            record.add_epoch(result)
        record.pretrained_sha256 = result.get("pretrained_sha256")
        if result.get("done") and result["epoch"] < result["epochs_planned"] and not record.ended:
            # Tune: the scheduler's STOP. Recorded as ended now, not when the trial has stopped: Tune may save that
            # decision unexecuted with its state, and a driver killed before it is executed would otherwise resume
            # the trial for another epoch (study/tuners.py stops a restored trial whose row says it ended).
            record.finish(stop_reason(record, stopped_by_scheduler=True))
            self._write(record, ended=True)
            return
        self._write(record)

    def say_storage(self, trial, result: dict) -> None:
        """Once when the storage stops taking the trials' checkpoints, once when it takes them all again."""
        behind = int(result.get(STORAGE_BEHIND) or 0)
        if behind and trial.trial_id not in self.storage_behind:
            if not self.storage_behind:
                session.active().echo(f"storage: {trial} could not upload its checkpoint ({result.get(STORAGE_ERROR)}); "
                                      "trials train on and keep their newest checkpoint until the storage takes it")
            self.storage_behind.add(trial.trial_id)
        elif not behind and trial.trial_id in self.storage_behind:
            self.storage_behind.discard(trial.trial_id)
            if not self.storage_behind:
                session.active().echo("storage: it takes the trials' checkpoints again; none is waiting")

    def on_trial_complete(self, iteration, trials, trial, **info):
        record = self.record_for(trial)
        if record.ended:  # recorded when ASHA stopped it, or it ended before Tune last saved its state and the
            return  # resume stopped it (study/tuners.py)
        record.finish(stop_reason(record), record.error)  # a config the trainer refused keeps its reason
        self._write(record, ended=True)

    def on_trial_recover(self, iteration, trials, trial, **info):
        record = self.record_for(trial)
        record.retries += 1
        self._write(record)
        session.active().echo(f"{trial}: failed, retrying from its last checkpoint (retry {record.retries})")

    def on_trial_error(self, iteration, trials, trial, **info):
        record = self.record_for(trial)
        if record.ended:
            return
        error = str(trial.get_error() or record.error or "unknown error").strip().splitlines()
        record.finish("errored", error[-1] if error else "unknown error")
        self._write(record, ended=True)
