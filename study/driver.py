"""What the driver of a study does: check everything it can before anything starts, create (or lock and resume)
the study directory, run each subset's Tune experiments, and summarise. ``run_study`` is what
``python -m study.run`` calls.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import replace

import optuna
import pandas as pd
import ray

from common import logs
from kinetics.dataset import ConvertedDataset
from kinetics.source import resolve_data_dir
from model.memory import step_memory
from reports.scores import search_trials
from study import faults, session, study_dir
from study.plan import largest_batch, share_on_cluster
from study.spaces import SearchSpace, SpaceError, check_grace_period, load_space
from study.study_dir import StudyDirError, StudyLocation, StudyRequest, driver_lock
from study.trainable import TrialPlan, run_trial
from study.tuners import SEARCH, SEEDS, named_trainable, repeat_points, repeat_tuner, restored, search_tuner
from training.config import SYNTHETIC
from training.pretrain import resolve_pretrained
from training.results import EXPERIMENTS, MANIFEST, SPACE_COPY, TRIALS, read_frame
from training.trainer import subset_spec


def cpu_profile_for(request: StudyRequest, data_source: str) -> bool:
    """``auto`` uses the labelled CPU-sized network on synthetic data and the paper's network on real data."""
    return request.profile == "cpu" or (request.profile == "auto" and data_source == SYNTHETIC)


def connect(address: str | None, echo: Callable[[str], None], dashboard_host: str = "127.0.0.1") -> bool:
    """Join the cluster at ``address`` (or RAY_ADDRESS); otherwise start a local Ray with its dashboard, on
    loopback unless ``dashboard_host`` says otherwise. Returns whether this process started the Ray it uses."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    quiet = logs.level() > logging.INFO  # --quiet: the workers' own lines (Ray Train's, the trainer's) stay there
    if address:
        context = ray.init(address=address, log_to_driver=not quiet)
    else:
        if dashboard_host not in ("127.0.0.1", "localhost", "::1"):
            logs.get("driver").warning(
                f"warning: the Ray dashboard will listen on {dashboard_host}: anyone who can reach this machine can "
                "see the study and submit jobs to it; prefer an SSH tunnel to 127.0.0.1:8265")
        context = ray.init(address="local", include_dashboard=True, dashboard_host=dashboard_host,
                           log_to_driver=not quiet)
    echo(ray_line(address, getattr(context, "dashboard_url", None)))
    return not address


def ray_line(address: str | None, url: str | None) -> str:
    """Which Ray the study runs on and where its dashboard is; with Ray's token authentication on (its default for a
    local Ray, RAY_AUTH_MODE=token) the dashboard asks for the token, which ``ray get-auth-token`` prints."""
    line = f"ray: {'joined ' + address if address else 'local cluster'}; dashboard: "
    if not url:
        return line + "not running"
    token = os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
    return line + f"http://{url}" + (" (it asks for Ray's token: ray get-auth-token prints it)" if token else "")


def trial_resources(space: SearchSpace, request: StudyRequest, subset: str, cpu: bool) -> dict[str, float]:
    """The space's resources for the subset and profile, unless the command line fixed them. They never depend on
    which nodes are up: on an autoscaling cluster GPU workers start because trials ask for GPUs."""
    resources = space.trial_resources(cpu, subset)
    if request.cpus_per_trial is not None:
        resources["cpu"] = request.cpus_per_trial
    if request.gpus_per_trial is not None:
        resources["gpu"] = request.gpus_per_trial
    return resources


def make_plan(location: StudyLocation, space: SearchSpace, request: StudyRequest, subset: str,
              data_source: str) -> TrialPlan:
    cpu = cpu_profile_for(request, data_source)
    return TrialPlan(study=location.name, subset=subset, subset_position=list(request.subsets).index(subset),
                     space=space, cpu_profile=cpu,
                     # remote storage: each trial writes its folder in its own directory, synced by Tune
                     experiments_dir="" if location.remote else str(location.root / EXPERIMENTS),
                     overrides={**request.overrides, "data": request.data, "seed": request.seed},
                     resources=trial_resources(space, request, subset, cpu), log_level=logs.level(),
                     early_stopping=request.early_stopping)


def comparable_budgets(plan: TrialPlan) -> list[int]:
    """The epochs at which the report compares trials: ASHA's rungs (where every trial that got there has a score)
    and the final epoch."""
    return [*plan.rungs, plan.epochs]


def check_plans(plans: list[TrialPlan], dataset: ConvertedDataset, request: StudyRequest) -> None:
    """What would otherwise fail inside every trial fails now, before a directory or a Ray cluster exists."""
    for plan in plans:
        dataset.subset(subset_spec(plan.config_for({})))
        if request.early_stopping and "epochs" not in plan.space.searched:
            check_grace_period(plan.space, plan.epochs, f"{plan.space.path}: asha.grace_period",
                               f"the {plan.epochs} epochs of this study's trials")
        declared = plan.space.raw.get("report_budget")
        budgets = comparable_budgets(plan)
        if declared is not None and declared not in budgets:
            raise SpaceError(f"{plan.space.path}: report_budget: epoch {declared} is not a budget this study compares "
                             f"trials at ({', '.join(map(str, budgets))}: ASHA's rungs and the last epoch)")


def prepare_pretrained(plans: list[TrialPlan], echo: Callable[[str], None]) -> None:
    """The synthetic checkpoint the trials may fine-tune from, made once by the driver before any trial starts
    (a node of a cluster that lacks it makes its own on first use, the same way)."""
    for plan in plans:
        uses = any(p.name == "pretrained" and SYNTHETIC in p.values for p in plan.space.params) or \
            plan.config_for({}).pretrained == SYNTHETIC
        if uses:
            resolve_pretrained(plan.config_for({"pretrained": SYNTHETIC}), echo=echo)


def sized_gpu_shares(plans: list[TrialPlan], echo: Callable[[str], None]) -> list[TrialPlan]:
    """A GPU share of 'auto' (the paper profile's default) chosen from the memory a step needs at the space's largest
    batch and the cards the cluster shows (study/plan.py)."""
    accelerators = sorted({key.split(":", 1)[1] for node in ray.nodes() if node.get("Alive")
                           for key in node.get("Resources", {}) if key.startswith("accelerator_type:")})
    sized = []
    for plan in plans:
        if plan.resources["gpu"] is None:
            config = plan.config_for({})
            needed = step_memory(config.width, config.window, 400, config.amp, config.optimizer).total(
                largest_batch(plan.space, plan.cpu_profile))
            share, why = share_on_cluster(needed, accelerators)
            echo(f"{plan.subset}: {why}")
            plan = replace(plan, resources={**plan.resources, "gpu": share})
        sized.append(plan)
    return sized


def without_gpus_here(plans: list[TrialPlan], echo: Callable[[str], None]) -> list[TrialPlan]:
    """A Ray this driver started has exactly this machine's GPUs: trials asking for GPUs on a machine without any
    would wait for ever, so they train on the CPU, and the driver says so."""
    if ray.cluster_resources().get("GPU", 0) > 0 or not any(p.resources["gpu"] for p in plans):
        return plans
    echo("this machine has no GPU: trials train on the CPU (use --address to run on a cluster with GPUs)")
    return [replace(plan, resources={**plan.resources, "gpu": 0.0}) for plan in plans]


def run_study(location: StudyLocation, request: StudyRequest | None, resume: bool = False,
              address: str | None = None, trainable: Callable = run_trial,
              echo: Callable[[str], None] | None = None, dashboard_host: str = "127.0.0.1",
              add_trials: int = 0, add_repeats: tuple[int, int] | None = None) -> pd.DataFrame:
    """Run (or resume) a study and return its trials table. ``trainable`` is replaceable for fault tests. A new
    study's directory is created only once every check has passed, so a failed start leaves nothing behind.
    With ``resume`` the study can grow (see ``grown_request``): ``add_trials`` more search trials per subset, and
    ``add_repeats`` (K, N): seed repeats of each subset's K best configs with N new seeds, for a study without any.
    ``echo`` says the progress (default: the ``stgcn.driver`` logger)."""
    echo = echo or logs.get("driver").info
    if resume:
        study_dir.fetch_request(location)  # a clear error when there is no study to resume
        with driver_lock(location.root):
            study_dir.refuse_moved(location)
            request = study_dir.load_request(location.root)
            space = load_space(location.root / SPACE_COPY)
            grown = grown_request(location, request, add_trials, add_repeats)
            prepared = _prepare(location, grown or request, space, address, echo, dashboard_host)
            if grown:
                study_dir.update(location.root, request=grown.to_dict())
                location.push(location.root / MANIFEST)
                echo(f"growing study {location.root}: " + "; ".join(growth(request, grown)))
            else:
                echo(f"resuming study {location.root} ({space.name}, subsets {', '.join(request.subsets)})")
            return _fit(location, grown or request, *prepared, trainable, echo)
    space = load_space(request.space)
    if location.remote and location.mirror.exists(MANIFEST):
        raise StudyDirError(f"{location.tune_storage}: a study of this name already exists; pass --resume to "
                            "continue it, or choose another --name")
    study_dir.refuse_existing(location.root)
    prepared = _prepare(location, request, space, address, echo, dashboard_host)
    study_dir.create(location.root, request, space.dump())
    if not location.sync(SYNC_TIMEOUT_S):  # no trial starts before the storage knows the study: a new head resumes it
        raise StorageIncomplete(f"{location.tune_storage}: study.json could not be copied there in "
                                f"{SYNC_TIMEOUT_S:.0f} s ({', '.join(location.mirror.failing.values())}); no trial "
                                "was started")
    with driver_lock(location.root):
        return _fit(location, request, *prepared, trainable, echo)


def grown_request(location: StudyLocation, request: StudyRequest, added: int,
                  repeats: tuple[int, int] | None = None) -> StudyRequest | None:
    """The study with ``added`` more search trials per subset and, given ``repeats`` (K, N), seed repeats of each
    subset's K best configs with N new seeds; None when it does not grow. Its size in study.json is raised once Ray is
    up. The resumed search goes on from its Optuna journals (a QMC design continues its sequence, TPE learns from
    every trial so far) while each subset's ASHA keeps its rungs; the trials that ran are not run again; the repeats
    are chosen from the search as it ends, as in a study started with them. More search trials in a study with seed
    repeats are refused: those were chosen from the search as it was."""
    if added and request.repeats and request.seeds:
        raise StudyDirError(f"{location.root}: --add-trials: this study re-ran its best configs with new seeds (--repeats "
                            f"{request.repeats} --seeds {request.seeds}), chosen from the search as it was; a larger "
                            "search would choose others. Start a new study with more --num-samples instead")
    if not added and not repeats:
        return None
    grown = replace(request, num_samples=request.num_samples + added)
    return replace(grown, repeats=repeats[0], seeds=repeats[1]) if repeats else grown


def growth(request: StudyRequest, grown: StudyRequest) -> list[str]:
    """How ``grown`` adds to ``request``, in words, for the driver's progress line."""
    said = []
    if grown.num_samples > request.num_samples:
        said.append(f"{grown.num_samples - request.num_samples} more trial(s) per subset, {grown.num_samples} in all; "
                    f"the {request.num_samples} that ran are kept")
    if grown.repeats != request.repeats or grown.seeds != request.seeds:
        said.append(f"seed repeats of the best {grown.repeats} config(s) of each subset, {grown.seeds} new seed(s) "
                    "each, after the search")
    return said


def _prepare(location: StudyLocation, request: StudyRequest, space: SearchSpace, address: str | None,
             echo: Callable[[str], None], dashboard_host: str) -> tuple[list[TrialPlan], ConvertedDataset]:
    """The data, each subset's plan, every check, and a Ray to run on."""
    dataset = ConvertedDataset(resolve_data_dir(request.data))  # prepared once per study, before any trial starts
    plans = [make_plan(location, space, request, subset, dataset.source) for subset in request.subsets]
    check_plans(plans, dataset, request)
    prepare_pretrained(plans, echo)
    echo(f"study {location.name}: space {space.name} ({space.sampler}), {request.num_samples} trials per subset on "
         f"{', '.join(request.subsets)}; data {dataset.root} ({dataset.source}); model "
         f"{plans[0].config_for({}).model_variant}; results in {location.root}")
    started_here = connect(address, echo, dashboard_host)
    plans = sized_gpu_shares(plans, echo)
    if started_here:
        plans = without_gpus_here(plans, echo)
    return plans, dataset


class StudyInterrupted(Exception):
    """Ctrl-C stopped the study: Tune saved its state, the study is marked interrupted, --resume continues it."""


class StorageIncomplete(Exception):
    """The study ran to its end, but some driver files could not be copied to the storage URI."""


SYNC_TIMEOUT_S = float(os.environ.get("STGCN_STUDY_SYNC_TIMEOUT_S", "600"))


@contextlib.contextmanager
def waiting_trials(count: int) -> Iterator[None]:
    """How many trials Tune creates before resources free up for them (TUNE_MAX_PENDING_TRIALS_PG, unless the user set
    it). Tune allows one with a searcher of its own, so a study's first trials started one after another, a worker's
    start-up apart. The study's searcher hands out at most max_concurrent trials of each subset at once, so that many
    may wait, as Tune allows its own ConcurrencyLimiter (and an autoscaler sees them all at once)."""
    name = "TUNE_MAX_PENDING_TRIALS_PG"
    if name in os.environ:
        yield
        return
    os.environ[name] = str(count)
    try:
        yield
    finally:
        os.environ.pop(name, None)


class Interrupts:
    """Ctrl-C during a study. The first asks Tune to stop gracefully (it saves its experiment state and returns from
    fit; Tune listens to SIGUSR1 for that when its own SIGINT handler is off) and is remembered, so the driver
    starts nothing after it: no seed repeats chosen from an unfinished search, no report. The second stops at once
    (KeyboardInterrupt)."""

    def __init__(self, echo: Callable[[str], None]):
        self.echo, self.interrupted, self.fitting = echo, False, False

    def __enter__(self) -> Interrupts:
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self.previous)

    def _handle(self, sig, frame) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        self.echo("interrupted: stopping the trials and saving the study's state (Ctrl-C again stops at once)")
        if self.fitting:
            os.kill(os.getpid(), signal.SIGUSR1)

    def fit(self, tuner) -> None:
        if self.interrupted:
            return
        self.fitting = True
        try:
            tuner.fit()
        finally:
            self.fitting = False


def _fit(location: StudyLocation, request: StudyRequest, plans: list[TrialPlan], dataset: ConvertedDataset,
         trainable: Callable, echo: Callable[[str], None]) -> pd.DataFrame:
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's table reporter, trimmed to our columns
    # A checkpoint every epoch with num_to_keep=1 snapshots the experiment state each time, on purpose: a resumed
    # study then loses at most the epoch in flight. Tune warns about that frequency; the warning is not for us.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    faults.install()
    study_dir.update(location.root, data_dir=str(dataset.root), data_source=dataset.source, ray=ray.__version__,
                     optuna=optuna.__version__, status="running", tune_storage=location.tune_storage,
                     resources_per_trial={p.subset: p.resources for p in plans},
                     budgets=comparable_budgets(plans[0]))
    location.push(location.root / MANIFEST)
    by_subset = {plan.subset: plan for plan in plans}
    session.activate(session.ActiveStudy(location, by_subset, dataset.source, request.seed, request.num_samples, echo))
    wrapped = named_trainable(trainable, by_subset)
    with Interrupts(echo) as interrupts, waiting_trials(len(plans) * request.max_concurrent):
        interrupts.fit(restored(location, SEARCH, wrapped, echo) or search_tuner(location, by_subset, request, wrapped))
        faults.point("driver.search_done")
        if request.repeats and request.seeds and not interrupts.interrupted:
            tuner = restored(location, SEEDS, wrapped, echo)
            if tuner is None:
                searched = read_frame(location.root, TRIALS)
                points = [point for subset in by_subset
                          for point in repeat_points(searched, subset, request.repeats, request.seeds, request.seed)]
                echo(f"re-running the best {request.repeats} config(s) of each subset with {request.seeds} more "
                     "seed(s)")
                tuner = repeat_tuner(location, by_subset, points, request, wrapped)
            faults.point("driver.repeats_chosen")
            interrupts.fit(tuner)
    if interrupts.interrupted:
        mark_interrupted(location)
        raise StudyInterrupted(f"{location.root}: interrupted; its state is saved")
    faults.point("driver.finishing")
    if not location.sync(SYNC_TIMEOUT_S):  # every table up before the storage says finished
        study_dir.update(location.root, status="finished")
        raise StorageIncomplete(f"the study finished, but these files could not be copied to {location.tune_storage} "
                                f"in {SYNC_TIMEOUT_S:.0f} s: {', '.join(map(str, location.mirror.failing))}; the local "
                                f"copy {location.root} is complete, and --resume copies the rest")
    study_dir.update(location.root, status="finished")
    location.push(location.root / MANIFEST)
    location.sync(SYNC_TIMEOUT_S)
    trials = read_frame(location.root, TRIALS)
    echo(summarize(trials, request.subsets))
    return trials


def mark_interrupted(location: StudyLocation) -> None:
    """Status 'interrupted', locally and, as far as the storage lets within a minute, at the storage URI."""
    if (location.root / MANIFEST).is_file():
        study_dir.update(location.root, status="interrupted")
        location.sync(60)


def summarize(trials: pd.DataFrame, order: tuple[str, ...] = ()) -> str:
    """One line per subset: how its trials ended, the search's and then the seed repeats'. What they say (the
    verdicts, the best at a named budget) is the report's answer, which study.run prints from the report's
    summary.json."""
    if trials.empty:
        return "no trial recorded"
    lines = []
    for subset in order or sorted(trials["subset"].unique()):
        group = search_trials(trials, subset)
        if group.empty:
            lines.append(f"{subset}: no trial recorded")
            continue
        repeats = trials[(trials["subset"] == subset) & trials["repeat_of"].notna()]
        lines.append(f"{subset}: {len(group)} trials; {ended(group)}"
                     + (f"; {len(repeats)} seed repeats: {ended(repeats)}" if len(repeats) else ""))
    return "\n".join(lines)


def ended(trials: pd.DataFrame) -> str:
    """'4 completed, 8 stopped by asha': how ``trials`` ended, the usual reasons first."""
    counts = trials["stop_reason"].value_counts()
    known = ("completed", "stopped_by_asha", "diverged", "errored", "interrupted", "running")
    reasons = [*(r for r in known if r in counts), *(r for r in counts.index if r not in known)]
    return ", ".join(f"{counts[r]} {r.replace('_', ' ')}" for r in reasons)
