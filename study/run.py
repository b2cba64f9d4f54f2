"""python -m study.run: a hyperparameter sensitivity study of ST-GCN with Ray Tune (Optuna + ASHA).

Both subsets (kinetics-motion, kinetics-392) run side by side in one Tune experiment over the same search space,
each with its own Optuna study and its own ASHA, so their results compare cleanly. Results are written while the
study runs: STORAGE/NAME/{epochs,trials}.parquet, experiments/<one folder per trial>, optuna/<subset>.journal; at
the end the report (python -m reports.build) goes to STORAGE/NAME/report/. With no --data the built-in synthetic
set (made once, cached) and the labelled CPU-sized network are used, so a study finishes in minutes on a laptop.

Examples:
  python -m study.run --space sgd_lr                                 # the learning-rate study, both subsets
  python -m study.run --space smoke --subset kinetics-motion         # a first contact, about a minute
  python -m study.run --space full --data /data/kinetics-converted   # real data, the paper's network, GPUs
  python -m study.run --space sgd_lr --name lr-study --resume        # continue an interrupted study
  python -m study.run --space sgd_lr --name lr-study --resume --add-trials 6   # 6 more trials per subset in it
  python -m study.run --space sgd_lr --repeats 2 --seeds 3           # plus the seed-noise floor
  python -m study.run --space sgd_lr --name lr-study --resume --repeats 2 --seeds 3   # the same, added to a study
  RAY_ADDRESS=auto python -m study.run --space full                  # on a running Ray cluster (or as a Ray Job)
  python -m study.run --space full --data /data/kinetics-converted --plan cluster.yaml   # its cost, before it starts
Search spaces: search_spaces/*.yaml, or a path to your own file. Relative paths (--data, --storage, the space,
classes_file and pretrained) are taken against the current directory, once, on the driver.
Exit status: 0 when every trial ran to its end (completed, stopped by ASHA or diverged), 1 when every trial failed
or the storage URI did not get every file, 2 on bad input, 3 when the study ran but some trials errored (counted,
with the first error, in the closing line), 130 when interrupted (Ctrl-C, at any moment: the trials stop and the
study's state is saved; --resume continues it; a second Ctrl-C stops at once).
"""

from __future__ import annotations

import signal
import sys


def _interrupted_while_loading(*_) -> None:
    print("interrupted before the study started; nothing was written", file=sys.stderr)
    sys.exit(130)


if __name__ == "__main__":  # Ctrl-C while the modules below load: one line and exit 130, as at any other moment
    signal.signal(signal.SIGINT, _interrupted_while_loading)

import argparse
import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from common import logs
from common.files import is_uri
from kinetics.errors import DataError
from kinetics.subsets import SUBSET_NAMES
from study.spaces import SearchSpace, SpaceError, load_space, shipped_spaces
from study.study_dir import (
    StudyDirError,
    StudyLocation,
    StudyRequest,
    check_storage,
    default_name,
    fetch_request,
    latest_of,
)
from training.config import FIELD_TYPES, SYNTHETIC, ConfigError, absolute_paths
from training.results import SPACE_COPY

if TYPE_CHECKING:
    import pandas as pd

INTERRUPTED = 130  # as a shell reports a process ended by Ctrl-C
SOME_ERRORED = 3  # the study ran to its end, but some trials errored
DEFAULTS = {"subset": "both", "data": SYNTHETIC, "profile": "auto", "storage": "studies", "dashboard_host": "127.0.0.1",
            "max_failures": 2, "seed": 0, "set": [], "repeats": 0, "seeds": 0}


def _overrides(items: list[str]) -> dict:
    values = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in FIELD_TYPES:
            raise ConfigError(f"--set {item}: unknown field {key!r}; known fields: {', '.join(sorted(FIELD_TYPES))}")
        values[key] = yaml.safe_load(value)
    return absolute_paths(values, Path.cwd())


def parser(defaults: bool = True) -> argparse.ArgumentParser:
    """``defaults=False``: every option absent unless given, to tell what a --resume command line asks for."""
    p = argparse.ArgumentParser(prog="python -m study.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                argument_default=None if defaults else argparse.SUPPRESS)
    p.add_argument("--space", help="search space name (search_spaces/NAME.yaml; --list names them) or file path")
    p.add_argument("--list", action="store_true", help="list the named search spaces with what each one varies, and exit")
    p.add_argument("--subset", choices=(*SUBSET_NAMES, "both"),
                   help="which subset(s); default both, side by side (or the space's own list)")
    p.add_argument("--num-samples", type=int, help="trials per subset (default: the space's 'trials')")
    p.add_argument("--data", help="converted dataset directory, or 'synthetic' (default)")
    p.add_argument("--profile", choices=("auto", "paper", "cpu"),
                   help="network and schedule size: the paper's, or the labelled CPU-sized variant "
                        "(auto, the default: cpu on synthetic data, paper on real data)")
    p.add_argument("--storage",
                   help="directory that holds studies (default ./studies), or a URI (s3://bucket/studies) that Tune "
                        "and the result tables are written to (the driver's local copy: ~/.cache/stgcn-study/studies); "
                        "a study is STORAGE/NAME")
    p.add_argument("--name", help="study name (default SPACE-YYYYmmdd-HHMMSS); an existing name needs --resume")
    p.add_argument("--resume", action="store_true",
                   help="continue the study NAME (default: the latest study of SPACE) as it was started; other "
                        "options must be absent or equal to the stored ones")
    p.add_argument("--add-trials", type=int, metavar="N",
                   help="with --resume: N more trials per subset in the same study (what the report's next step asks "
                        "for); the search continues from its Optuna journals, ASHA keeps its rungs, the trials that "
                        "ran are kept, and the report is rebuilt over all of them")
    p.add_argument("--address", help="Ray cluster to join (auto, or HOST:6379); default RAY_ADDRESS, else a local "
                                     "Ray with its dashboard on 127.0.0.1. Ray Client (ray://) is refused: submit "
                                     "the study as a Ray Job instead")
    p.add_argument("--dashboard-host",
                   help="where a local Ray's dashboard listens (default 127.0.0.1; 0.0.0.0 opens it to the network, "
                        "with a warning)")
    p.add_argument("--cpus-per-trial", type=float, help="CPUs per trial (default: the space's resources)")
    p.add_argument("--gpus-per-trial", type=float,
                   help="GPU share per trial, fractions share a GPU (default: the space's resources for the profile "
                        "and subset; on a machine without GPUs that this command's own Ray runs on, 0)")
    p.add_argument("--max-concurrent", type=int, help="trials running at once per subset (default: the space's)")
    p.add_argument("--max-failures", type=int, help="retries of a crashed trial from its checkpoint (default 2)")
    p.add_argument("--seed", type=int, help="training seed of every trial and the sampler's seed (default 0)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="fix a config field for every trial, e.g. --set epochs=4 (not a field the space searches)")
    p.add_argument("--no-reuse-actors", action="store_true",
                   help="start every trial in a new worker process (default: a trial starts in the worker of a "
                        "finished one, where the imports and the open data stay; its log lines and tasks carry its own "
                        "name, its scores are those of a new worker)")
    p.add_argument("--no-early-stopping", action="store_true",
                   help="run every trial to its last epoch (no ASHA): the baseline to judge ASHA's savings by")
    p.add_argument("--repeats", type=int, metavar="K",
                   help="after the search, re-run the K best configs of each subset with --seeds more seeds; with "
                        "--resume, adds them to a study that has none (what the report's next step asks for)")
    p.add_argument("--seeds", type=int, metavar="N",
                   help="seeds per repeated config (beyond the search's own), for the seed-noise floor")
    p.add_argument("--no-report", action="store_true", help="skip building the report at the end")
    p.add_argument("--report-every", type=float, metavar="MINUTES",
                   help="also rebuild the report every MINUTES while the study runs (a child process, one at a time), "
                        "so STORAGE/NAME/report/index.html is a live page; allowed with --resume")
    p.add_argument("--plan", type=Path, metavar="CLUSTER_YAML",
                   help="print what the study would cost on the node types of a Ray cluster-launcher file (per subset: "
                        "node type, trials per node, trials at once, expected epochs under ASHA, GPU-hours) and exit; "
                        "starts nothing")
    logs.add_options(p)
    if defaults:
        p.set_defaults(**DEFAULTS)
    return p


def request_from(args: argparse.Namespace, space: SearchSpace | None = None) -> StudyRequest:
    """The study the options ask for; ``space``: the space already loaded (a resumed study's own copy)."""
    space = space or load_space(args.space)
    subsets = space.subsets if args.subset == "both" else (args.subset,)
    for name, value, minimum in (("--num-samples", args.num_samples, 1), ("--max-concurrent", args.max_concurrent, 1),
                                 ("--cpus-per-trial", args.cpus_per_trial, 0.01), ("--max-failures", args.max_failures, 0),
                                 ("--gpus-per-trial", args.gpus_per_trial, 0), ("--repeats", args.repeats, 0),
                                 ("--seeds", args.seeds, 0)):
        if value is not None and value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    overrides = _overrides(args.set)
    searched = sorted(set(overrides) & set(space.searched))
    if searched:
        raise ConfigError(f"--set {', '.join(searched)}: the space {space.path.name} searches "
                          f"{'this parameter' if len(searched) == 1 else 'these parameters'}; drop the --set, or use a "
                          "space that fixes it")
    data = args.data if args.data == SYNTHETIC else absolute_paths({"data": args.data}, Path.cwd())["data"]
    return StudyRequest(space=str(space.path), subsets=tuple(subsets), num_samples=args.num_samples or space.trials,
                        data=data, profile=args.profile, seed=args.seed, cpus_per_trial=args.cpus_per_trial,
                        gpus_per_trial=args.gpus_per_trial,
                        max_concurrent=args.max_concurrent or space.max_concurrent, max_failures=args.max_failures,
                        overrides=overrides, repeats=args.repeats, seeds=args.seeds,
                        early_stopping=not args.no_early_stopping, reuse_actors=not args.no_reuse_actors)


# Options that describe the study itself (stored in study.json), as opposed to where and how this driver runs it.
REQUEST_OPTIONS = ("subset", "num_samples", "data", "profile", "cpus_per_trial", "gpus_per_trial", "max_concurrent",
                   "max_failures", "seed", "set", "no_reuse_actors", "no_early_stopping", "repeats", "seeds")


def check_resume_options(argv: list[str], location: StudyLocation) -> tuple[int, int] | None:
    """--resume continues the study as it was started: an option that would change it is refused, naming it.
    --repeats K --seeds N on a study without seed repeats adds to it rather than changes it: returned as (K, N)."""
    stored = fetch_request(location)
    space = load_space(location.root / SPACE_COPY)
    given = vars(parser(defaults=False).parse_args(argv))
    if Path(given["space"]).stem != space.name:
        raise StudyDirError(f"--space {given['space']}: the study was started with the space {space.name}; "
                            "resume it with that space")
    asked = request_from(parser().parse_args(argv), space)
    adding = not (stored.repeats and stored.seeds) and bool({"repeats", "seeds"} & set(given))
    if adding and not (asked.repeats and asked.seeds):
        raise StudyDirError(f"--repeats {asked.repeats} --seeds {asked.seeds}: to add seed repeats to this study, give "
                            "both, each at least 1 (--repeats K --seeds N re-runs each subset's K best configs with N "
                            "new seeds)")
    for option in REQUEST_OPTIONS:
        if option not in given or (adding and option in ("repeats", "seeds")):
            continue
        field = {"subset": "subsets", "set": "overrides", "no_early_stopping": "early_stopping",
                 "no_reuse_actors": "reuse_actors"}.get(option, option)
        if getattr(asked, field) != getattr(stored, field):
            grow = (f"; to run more trials in it: --add-trials {asked.num_samples - stored.num_samples}"
                    if option == "num_samples" and asked.num_samples > stored.num_samples else "")
            raise StudyDirError(f"--{option.replace('_', '-')}: {getattr(asked, field)!r} differs from the study's "
                                f"{getattr(stored, field)!r}; --resume continues the study as it was started, so drop "
                                f"the option (or start a new study with another --name){grow}")
    return (asked.repeats, asked.seeds) if adding else None


def location_from(args: argparse.Namespace) -> StudyLocation:
    from kinetics.source import cache_root
    address, where = (args.address, "--address") if args.address else (os.environ.get("RAY_ADDRESS"), "RAY_ADDRESS")
    if address and address.startswith("ray://"):
        raise ConfigError(f"{where} {address}: under Ray Client, Tune's driver loop would run on the head and "
                          "write the study there; submit the study as a Ray Job instead: ray job submit --address "
                          "http://HEAD:8265 --working-dir . -- python -m study.run ... (docs/cluster.md)")
    remote = args.storage if is_uri(args.storage) else None
    if remote and args.resume and not args.name:
        raise StudyDirError(f"{args.storage}: --resume of a study in remote storage needs its --name")
    # With remote storage the driver keeps its files under the cache: a path that stays the same across job
    # submissions (each job runs in a fresh working directory).
    storage = (cache_root() / "studies") if remote else Path(args.storage).expanduser().resolve()
    check_storage(remote or storage, "--storage")
    if remote:
        check_storage(storage, "the driver's local copy (STGCN_STUDY_CACHE)")
    if args.resume and not args.name:
        return StudyLocation(storage, latest_of(storage, Path(args.space).stem).name, remote)
    return StudyLocation(storage, args.name or default_name(Path(args.space).stem), remote)


def all_failed(trials: pd.DataFrame) -> str | None:
    """The first trial's error when no trial of the study trained to an end, else None."""
    if len(trials) and (trials["stop_reason"] == "errored").all():
        first = trials.sort_values(["subset", "index"]).iloc[0]
        return f"{first['subset']} trial {first['index']}: {first['error'] or 'no message'}"
    if trials.empty:
        return "no trial ran"
    return None


def some_errored(trials: pd.DataFrame) -> str | None:
    """The closing line of a study some of whose trials errored (after their retries, or a config the trainer
    refused), or None."""
    errored = trials[trials["stop_reason"] == "errored"] if len(trials) else trials
    if errored.empty:
        return None
    first = errored.sort_values(["subset", "index"]).iloc[0]
    return (f"{len(errored)} of {len(trials)} trials errored (the first: {first['subset']} trial {first['index']}: "
            f"{first['error'] or 'no message'}); each one's reason is in trials.parquet (column error) and in the "
            "report's notes. The study is complete otherwise, and --resume does not run them again: fix the cause, "
            "then start a new study.")


def resume_command(args: argparse.Namespace, location: StudyLocation) -> str:
    storage = f" --storage {args.storage}" if args.storage != DEFAULTS["storage"] else ""
    return f"python -m study.run --space {Path(args.space).stem} --name {location.name}{storage} --resume"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    if args.list:
        width = max(len(name) for name, _ in shipped_spaces())
        print("\n".join(f"{name:{width}}  {text}" for name, text in shipped_spaces()))
        return 0
    if not args.space:
        print("error: --space is required: a named space (python -m study.run --list) or a file", file=sys.stderr)
        return 2
    # Imported once the arguments parse: torch, Ray and the report's libraries take seconds, which --help and a
    # refused option should not wait for.
    logs.keep_trial_lines()
    from study.driver import SYNC_TIMEOUT_S, StorageIncomplete, StudyInterrupted, mark_interrupted, run_study
    from study.live_report import LiveReport
    from study.plan import PlanError, plan_study
    from study.ray_compat import UntestedRay, check_version
    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here Ctrl-C is KeyboardInterrupt, handled below
    try:
        check_version()
    except UntestedRay as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logs.configure(args.log_level)
    say = logs.get("driver").info
    location = None
    if args.plan:
        try:
            request = request_from(args)
            print("\n".join(plan_study(request, load_space(request.space), args.plan)))
        except (ConfigError, DataError, SpaceError, PlanError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.report_every is not None and args.report_every <= 0:
        print(f"error: --report-every {args.report_every}: give a number of minutes above 0", file=sys.stderr)
        return 2
    if args.add_trials is not None and (args.add_trials < 1 or not args.resume):
        print(f"error: --add-trials {args.add_trials}: " + ("give a number of trials of at least 1" if args.resume else
              "it grows an existing study: add --resume (and --name NAME, else the latest study of the space)"),
              file=sys.stderr)
        return 2
    try:
        location = location_from(args)
        add_repeats = check_resume_options(argv, location) if args.resume else None
        request = None if args.resume else request_from(args)
        with LiveReport(location, args.report_every, logs.get("report").info):
            trials = run_study(location, request, resume=args.resume, address=args.address,
                               dashboard_host=args.dashboard_host, add_trials=args.add_trials or 0,
                               add_repeats=add_repeats)
    except (ConfigError, DataError, SpaceError, StudyDirError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (StudyInterrupted, KeyboardInterrupt):
        if location is not None:
            mark_interrupted(location)
            print(f"interrupted: the study's state is saved in {location.root}; continue it with\n  "
                  f"{resume_command(args, location)}\na report of what is there so far: python -m reports.build "
                  f"{location.root}", file=sys.stderr)
        return INTERRUPTED
    except StorageIncomplete as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    say(f"results: {location.root} ({len(trials)} trials)")
    try:
        return finish(args, location, trials, say, SYNC_TIMEOUT_S)
    except KeyboardInterrupt:
        print(f"interrupted after the study finished; build its report with: python -m reports.build {location.root}",
              file=sys.stderr)
        return INTERRUPTED


def finish(args: argparse.Namespace, location: StudyLocation, trials: pd.DataFrame, say, sync_timeout_s: float) -> int:
    """After the study: its report and answer, then the exit status that says how its trials ended."""
    if not args.no_report:
        from reports.answer import answer_lines
        from reports.build import build
        from reports.spreadsheet import FILENAME
        from reports.summary import FILENAME as SUMMARY
        from reports.summary import read_summary
        try:
            report = build(location.root)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            print(f"error: the disk is full ({exc.strerror}) while the report was built; the study itself is finished "
                  f"and complete: free space, then python -m reports.build {location.root}", file=sys.stderr)
            return 1
        location.push(report)
        location.sync(sync_timeout_s)
        say("\n".join(answer_lines(read_summary(report / SUMMARY))))
        say(f"report: {report / FILENAME}, {report / 'index.html'}, {report / SUMMARY}")
    failed = all_failed(trials)
    if failed:
        print(f"error: every trial failed; the first: {failed}", file=sys.stderr)
        return 1
    errored = some_errored(trials)
    if errored:
        print(f"error: {errored}", file=sys.stderr)
        return SOME_ERRORED
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # a moment no handler above covers (a --plan being printed): still one line
        print("interrupted", file=sys.stderr)
        sys.exit(INTERRUPTED)
