"""A study: for each subset, one Ray Tune experiment of the same search space (Optuna TPE proposes, ASHA stops
early), recorded as it runs into the study directory. ``run_study`` is what ``python -m study.run`` calls.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import pandas as pd
import ray
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.search.optuna import OptunaSearch
from ray.tune.trainable.function_trainable import wrap_function

from reports.analysis import seed_noise
from study import study_dir
from study.config import SYNTHETIC
from study.data.dataset import ConvertedDataset
from study.data.source import resolve_data_dir
from study.files import write_json
from study.mirror import Mirror
from study.recorder import StudyRecorder
from study.results import TRIALS, read_table
from study.spaces import SearchSpace, load_space
from study.study_dir import StudyRequest
from study.trainable import REPEAT_INDEX_BASE, REPEAT_OF, REPORTED_CONFIG, TrialPlan, run_trial
from study.trainer import subset_spec

METRIC, MODE = "val_top1", "max"
# The progress table: what was searched shows as a parameter, the rest as the value the trial reports.
KEY_COLUMNS = {"optimizer": "optimizer", "lr": "lr", "batch_size": "batch", "scheduler": "scheduler"}
METRIC_COLUMNS = {"epoch": "epoch", "epoch_lr": "lr now", "val_top1": "val top-1", "train_loss": "train loss"}


@dataclass(frozen=True)
class StudyLocation:
    """Where a study lives: ``storage/name`` locally; with ``remote`` (a URI) Tune writes to ``remote/name`` and
    the local directory holds the driver's files, each copied up as it changes."""
    storage: Path
    name: str
    remote: str | None = None

    @property
    def root(self) -> Path:
        return self.storage / self.name

    @property
    def tune_storage(self) -> str:
        return f"{self.remote.rstrip('/')}/{self.name}" if self.remote else str(self.root)

    @property
    def mirror(self) -> Mirror | None:
        return Mirror(self.root, self.tune_storage) if self.remote else None

    def push(self, *paths: Path) -> None:
        if self.remote:
            self.mirror.push(*paths)


def cpu_profile_for(request: StudyRequest, data_source: str) -> bool:
    """``auto`` uses the labelled CPU-sized network on synthetic data and the paper's network on real data."""
    return request.profile == "cpu" or (request.profile == "auto" and data_source == SYNTHETIC)


def connect(address: str | None, echo: Callable[[str], None], dashboard_host: str = "127.0.0.1") -> None:
    """Join the cluster at ``address`` (or RAY_ADDRESS); otherwise start a local Ray with its dashboard, on
    loopback unless ``dashboard_host`` says otherwise."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        context = ray.init(address=address)
    else:
        if dashboard_host not in ("127.0.0.1", "localhost", "::1"):
            echo(f"warning: the Ray dashboard will listen on {dashboard_host}: anyone who can reach this machine can "
                 "see the study and submit jobs to it; prefer an SSH tunnel to 127.0.0.1:8265")
        context = ray.init(address="local", include_dashboard=True, dashboard_host=dashboard_host)
    url = getattr(context, "dashboard_url", None)
    echo(f"ray: {'joined ' + address if address else 'local cluster'}; "
         f"dashboard: {'http://' + url if url else 'not running'}")


def gpus_per_trial(request: StudyRequest) -> float:
    """The requested share, or half a GPU per trial when the cluster has GPUs and nothing was asked."""
    if request.gpus_per_trial >= 0:
        return request.gpus_per_trial
    return 0.5 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def make_plan(location: StudyLocation, space: SearchSpace, request: StudyRequest, subset: str,
              data_source: str) -> TrialPlan:
    return TrialPlan(study=location.name, subset=subset, subset_position=list(request.subsets).index(subset),
                     space=space, cpu_profile=cpu_profile_for(request, data_source),
                     # remote storage: each trial writes its folder in its own directory, synced by Tune
                     experiments_dir="" if location.remote else str(location.root / "experiments"),
                     overrides={**request.overrides, "data": request.data, "seed": request.seed},
                     cpus=request.cpus_per_trial)


def named_trainable(trainable: Callable, plan: TrialPlan, resources: dict):
    """The function trainable as Tune's class, whose actors show the trial's name (STUDY.SUBSET.INDEX) as their
    name in the Ray dashboard and the State API instead of the function's."""
    base = wrap_function(tune.with_parameters(trainable, plan=plan))

    class NamedTrial(base):
        def __repr__(self) -> str:
            return self.trial_name

    NamedTrial.__name__ = NamedTrial.__qualname__ = base.__name__
    return tune.with_resources(NamedTrial, resources)


def _reporter(space: SearchSpace) -> tune.CLIReporter:
    searched = {p.name for p in space.params}
    return tune.CLIReporter(parameter_columns={k: v for k, v in KEY_COLUMNS.items() if k in searched},
                            metric_columns={**{k: v for k, v in KEY_COLUMNS.items()
                                               if k not in searched and k in REPORTED_CONFIG}, **METRIC_COLUMNS},
                            max_report_frequency=30, max_progress_rows=12, metric=METRIC, mode=MODE)


def _run_config(location: StudyLocation, plan: TrialPlan, name: str, request: StudyRequest, data_source: str,
                echo: Callable[[str], None]) -> tune.RunConfig:
    return tune.RunConfig(
        name=name, storage_path=location.tune_storage, verbose=1, progress_reporter=_reporter(plan.space),
        callbacks=[StudyRecorder(location.root, plan, data_source, echo, location.mirror)],
        sync_config=tune.SyncConfig(sync_artifacts=bool(location.remote)),
        failure_config=tune.FailureConfig(max_failures=request.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1))


def _restored(location: StudyLocation, name: str, trainable: Callable, echo) -> tune.Tuner | None:
    experiment = f"{location.tune_storage}/{name}"
    if not tune.Tuner.can_restore(experiment):
        return None
    echo(f"{name}: resuming Tune experiment {experiment}")
    return tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True)


def search_tuner(location: StudyLocation, plan: TrialPlan, request: StudyRequest, data_source: str,
                 trainable: Callable, echo: Callable[[str], None]) -> tune.Tuner:
    """Optuna TPE proposes (the paper recipe first), ASHA stops, at most max_concurrent trials at once."""
    restored = _restored(location, plan.subset, trainable, echo)
    if restored:
        return restored
    space = plan.space
    searcher = OptunaSearch(
        space=space.define_by_run, metric=METRIC, mode=MODE, seed=request.seed, study_name=plan.subset,
        storage=JournalStorage(JournalFileBackend(str(location.root / study_dir.OPTUNA_JOURNAL))),
        points_to_evaluate=[space.paper_point(plan.cpu_profile)] if space.include_paper_recipe else None)
    scheduler = ASHAScheduler(time_attr="epoch", metric=METRIC, mode=MODE, max_t=plan.config_for({}).epochs,
                              grace_period=space.grace_period, reduction_factor=space.reduction_factor) \
        if request.early_stopping else None
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=request.max_concurrent),
            scheduler=scheduler, num_samples=request.num_samples, reuse_actors=request.reuse_actors,
            trial_name_creator=plan.trial_name, trial_dirname_creator=plan.trial_dirname),
        run_config=_run_config(location, plan, plan.subset, request, data_source, echo))


def repeat_points(trials: pd.DataFrame, subset: str, repeats: int, seeds: int, first_seed: int) -> list[dict]:
    """The best ``repeats`` search trials of ``subset``, each with ``seeds`` new seeds after ``first_seed``."""
    search = trials[(trials["subset"] == subset) & trials["repeat_of"].isna()].dropna(subset=["best_val_top1"])
    best = search.sort_values("best_val_top1", ascending=False).head(repeats)
    return [{**json.loads(row["sampled"]), "seed": first_seed + k, REPEAT_OF: row["trial_id"]}
            for _, row in best.iterrows() for k in range(1, seeds + 1)]


class FixedPoints(Searcher):
    """Hands out a fixed list of configs, one per trial, then says it is finished. (Tune's own variant generator
    wants every point to share one set of keys; a seed repeat of an Adam config has no momentum.)"""

    def __init__(self, points: list[dict]):
        super().__init__(metric=METRIC, mode=MODE)
        self.points, self.given = list(points), 0

    def suggest(self, trial_id: str) -> dict | str:
        if self.given >= len(self.points):
            return Searcher.FINISHED
        self.given += 1
        return dict(self.points[self.given - 1])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass

    def save(self, checkpoint_path: str) -> None:
        """Saved with the experiment, so a resumed study does not hand out the same points twice."""
        write_json(Path(checkpoint_path), {"points": self.points, "given": self.given})

    def restore(self, checkpoint_path: str) -> None:
        state = json.loads(Path(checkpoint_path).read_text())
        self.points, self.given = state["points"], state["given"]


def repeat_tuner(location: StudyLocation, plan: TrialPlan, points: list[dict], request: StudyRequest,
                 data_source: str, trainable: Callable, echo: Callable[[str], None]) -> tune.Tuner:
    """Every point trained to the end (no early stopping): the spread across seeds is the noise floor."""
    name = f"{plan.subset}-seeds"
    restored = _restored(location, name, trainable, echo)
    if restored:
        return restored
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(FixedPoints(points), max_concurrent=request.max_concurrent),
            num_samples=len(points), reuse_actors=request.reuse_actors, trial_name_creator=plan.trial_name,
            trial_dirname_creator=plan.trial_dirname),
        run_config=_run_config(location, plan, name, request, data_source, echo))


def run_study(location: StudyLocation, request: StudyRequest | None, resume: bool = False,
              address: str | None = None, trainable: Callable = run_trial,
              echo: Callable[[str], None] = print, dashboard_host: str = "127.0.0.1") -> pd.DataFrame:
    """Run (or resume) a study and return its trials table. ``trainable`` is replaceable for fault tests."""
    if resume:
        if location.remote and not (location.root / study_dir.MANIFEST).is_file():
            location.mirror.pull()
        request = study_dir.load_request(location.root)
        echo(f"resuming study {location.root} ({request.space}, subsets {', '.join(request.subsets)})")
    space = load_space(request.space)
    if not resume:
        if location.remote and location.mirror.exists(study_dir.MANIFEST):
            raise study_dir.StudyDirError(f"{location.tune_storage}: a study of this name already exists; pass "
                                          "--resume to continue it, or choose another --name")
        study_dir.create(location.root, request, space.path)
        location.push(location.root / study_dir.MANIFEST, location.root / "space.yaml")
    data_dir = resolve_data_dir(request.data)  # prepared once per study, before any trial starts
    dataset = ConvertedDataset(data_dir)
    plans = [make_plan(location, space, request, subset, dataset.source) for subset in request.subsets]
    for plan in plans:
        dataset.subset(subset_spec(plan.config_for({})))  # a subset the data cannot give fails now, not in a trial
    echo(f"study {location.name}: space {space.name}, {request.num_samples} trials per subset on "
         f"{', '.join(request.subsets)}; data {data_dir} ({dataset.source}); model "
         f"{plans[0].config_for({}).model_variant}; results in {location.root}")
    connect(address, echo, dashboard_host)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's table reporter, trimmed to our columns
    # A checkpoint every epoch with num_to_keep=1 snapshots the experiment state each time, on purpose: a resumed
    # study then loses at most the epoch in flight. Tune warns about that frequency; the warning is not for us.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    resources = {"cpu": request.cpus_per_trial, "gpu": gpus_per_trial(request)}
    study_dir.update(location.root, data_dir=str(data_dir), data_source=dataset.source, ray=ray.__version__,
                     optuna=optuna.__version__, resources_per_trial=resources, status="running",
                     tune_storage=location.tune_storage)
    location.push(location.root / study_dir.MANIFEST)
    for plan in plans:
        wrapped = named_trainable(trainable, plan, resources)
        search_tuner(location, plan, request, dataset.source, wrapped, echo).fit()
    if request.repeats and request.seeds:
        searched = read_table(location.root, TRIALS).to_pandas()
        for plan in plans:
            points = repeat_points(searched, plan.subset, request.repeats, request.seeds, request.seed)
            echo(f"{plan.subset}: re-running the best {request.repeats} config(s) with {request.seeds} more seed(s)")
            repeats = replace(plan, index_shift=REPEAT_INDEX_BASE - 1)  # counted from 1
            wrapped = named_trainable(trainable, repeats, resources)
            repeat_tuner(location, repeats, points, request, dataset.source, wrapped, echo).fit()
    study_dir.update(location.root, status="finished")
    location.push(location.root / study_dir.MANIFEST, location.root / study_dir.OPTUNA_JOURNAL)
    trials = read_table(location.root, TRIALS).to_pandas()
    echo(summarize(trials, request.subsets))
    return trials


def summarize(trials: pd.DataFrame, order: tuple[str, ...] = ()) -> str:
    """One screen: per subset the best trial's config and score, and how the trials ended."""
    if trials.empty:
        return "no trial recorded"
    lines = []
    repeats, noise = trials[trials["repeat_of"].notna()], seed_noise(trials)
    for subset in order or sorted(trials["subset"].unique()):
        group = trials[(trials["subset"] == subset) & trials["repeat_of"].isna()]
        if group.empty:
            lines.append(f"{subset}: no trial recorded")
            continue
        counts = group["stop_reason"].value_counts()
        lines.append(f"{subset}: {len(group)} trials; " + ", ".join(f"{counts.get(r, 0)} {r.replace('_', ' ')}"
                     for r in ("completed", "stopped_by_asha", "diverged", "errored") if counts.get(r, 0)))
        scored = group.dropna(subset=["best_val_top1"])
        if scored.empty:
            lines.append("  no trial finished an epoch with a valid score")
            continue
        top = scored.loc[scored["best_val_top1"].idxmax()]
        lines.append(f"  best: val top-1 {100 * top['best_val_top1']:.1f}% (top-5 {100 * top['best_val_top5']:.1f}%) "
                     f"at epoch {top['best_epoch']}/{top['epochs_planned']}: {top['optimizer']} lr {top['lr']:.3g} "
                     f"batch {top['batch_size']} {top['scheduler']} wd {top['weight_decay']:.3g}  "
                     f"[{top['folder']}]")
        if subset in noise:
            runs = repeats[repeats["subset"] == subset]
            lines.append(f"  seed noise: {len(runs)} repeat run(s) of {runs['repeat_of'].nunique()} config(s); std of "
                         f"best val top-1 across seeds {100 * noise[subset]:.2f} points (mean over configs)")
    return "\n".join(lines)
