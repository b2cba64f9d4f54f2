"""python -m study.run: a hyperparameter sensitivity study of ST-GCN with Ray Tune (Optuna TPE + ASHA).

Each subset (kinetics-motion, kinetics-392) is its own Tune experiment over the same search space, so their
results compare cleanly. Results are written while the study runs: STORAGE/NAME/{epochs,trials}.parquet,
experiments/<one folder per trial>, optuna.journal; at the end the report (python -m reports.build) goes to
STORAGE/NAME/report/. With no --data the built-in synthetic set (made once, cached) and the labelled CPU-sized
network are used, so a study finishes in minutes on a laptop.

Examples:
  python -m study.run --space smoke                                  # about a minute per subset on 2 cores
  python -m study.run --space sgd_lr --subset kinetics-motion
  python -m study.run --space full --data /data/kinetics-converted --gpus-per-trial 0.5
  python -m study.run --space sgd_lr --name lr-study --resume        # continue an interrupted study
  python -m study.run --space sgd_lr --repeats 2 --seeds 3           # plus the seed-noise floor
  RAY_ADDRESS=auto python -m study.run --space full                  # on a running Ray cluster
Search spaces: search_spaces/*.yaml, or a path to your own file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from reports.build import build
from reports.spreadsheet import FILENAME
from study.config import FIELD_TYPES, SYNTHETIC, ConfigError
from study.data.errors import DataError
from study.data.source import cache_root
from study.data.subsets import SUBSET_NAMES
from study.mirror import is_uri
from study.runner import StudyLocation, run_study
from study.spaces import SpaceError, load_space
from study.study_dir import StudyDirError, StudyRequest, default_name, latest_of


def _overrides(items: list[str]) -> dict:
    values = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in FIELD_TYPES:
            raise ConfigError(f"--set {item}: unknown field {key!r}; known fields: {', '.join(sorted(FIELD_TYPES))}")
        values[key] = yaml.safe_load(value)
    return values


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m study.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", required=True, help="search space name (search_spaces/NAME.yaml) or file path")
    p.add_argument("--subset", choices=(*SUBSET_NAMES, "both"), default="both",
                   help="which subset(s); default both, each its own Tune experiment (or the space's own list)")
    p.add_argument("--num-samples", type=int, help="trials per subset (default: the space's 'trials')")
    p.add_argument("--data", default=SYNTHETIC, help="converted dataset directory, or 'synthetic' (default)")
    p.add_argument("--profile", choices=("auto", "paper", "cpu"), default="auto",
                   help="network and schedule size: the paper's, or the labelled CPU-sized variant "
                        "(auto: cpu on synthetic data, paper on real data)")
    p.add_argument("--storage", default="studies",
                   help="directory that holds studies (default ./studies), or a URI (s3://bucket/studies) that Tune "
                        "and the result tables are written to (the driver's local copy: ~/.cache/stgcn-study/studies); "
                        "a study is STORAGE/NAME")
    p.add_argument("--name", help="study name (default SPACE-YYYYmmdd-HHMMSS); an existing name needs --resume")
    p.add_argument("--resume", action="store_true",
                   help="continue the study NAME (default: the latest study of SPACE) with its stored settings")
    p.add_argument("--address", help="Ray cluster to join (auto, or ray://host:10001); default RAY_ADDRESS, "
                                     "else a local Ray with its dashboard on 127.0.0.1")
    p.add_argument("--dashboard-host", default="127.0.0.1",
                   help="where a local Ray's dashboard listens (default 127.0.0.1; 0.0.0.0 opens it to the network, "
                        "with a warning)")
    p.add_argument("--cpus-per-trial", type=float, help="CPUs per trial (default: the space's resources.cpus)")
    p.add_argument("--gpus-per-trial", type=float,
                   help="GPU share per trial, fractions share a GPU (default: the space's resources.gpus if set, "
                        "else 0.5 when the cluster has GPUs)")
    p.add_argument("--max-concurrent", type=int, help="trials running at once (default: the space's)")
    p.add_argument("--max-failures", type=int, default=2, help="retries of a crashed trial from its checkpoint")
    p.add_argument("--seed", type=int, default=0, help="training seed of every trial and the TPE sampler's seed")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="fix a config field for every trial, e.g. --set epochs=4")
    p.add_argument("--reuse-actors", action="store_true",
                   help="start trials in finished trials' workers (faster start; the dashboard then shows an actor under "
                        "its first trial's name)")
    p.add_argument("--no-early-stopping", action="store_true",
                   help="run every trial to its last epoch (no ASHA): the baseline to judge ASHA's savings by")
    p.add_argument("--repeats", type=int, default=0, metavar="K",
                   help="after the search, re-run the K best configs of each subset with --seeds more seeds")
    p.add_argument("--seeds", type=int, default=0, metavar="N",
                   help="seeds per repeated config (beyond the search's own), for the seed-noise floor")
    p.add_argument("--no-report", action="store_true", help="skip building the report at the end")
    return p


def request_from(args: argparse.Namespace) -> StudyRequest:
    space = load_space(args.space)
    subsets = space.subsets if args.subset == "both" else (args.subset,)
    for name, value, minimum in (("--num-samples", args.num_samples, 1), ("--max-concurrent", args.max_concurrent, 1),
                                 ("--cpus-per-trial", args.cpus_per_trial, 0.01), ("--max-failures", args.max_failures, 0),
                                 ("--gpus-per-trial", args.gpus_per_trial, 0), ("--repeats", args.repeats, 0),
                                 ("--seeds", args.seeds, 0)):
        if value is not None and value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    gpus = args.gpus_per_trial if args.gpus_per_trial is not None else (space.gpus if space.gpus > 0 else -1.0)
    return StudyRequest(space=str(space.path), subsets=tuple(subsets), num_samples=args.num_samples or space.trials,
                        data=args.data, profile=args.profile, seed=args.seed,
                        cpus_per_trial=args.cpus_per_trial or space.cpus, gpus_per_trial=gpus,
                        max_concurrent=args.max_concurrent or space.max_concurrent, max_failures=args.max_failures,
                        overrides=_overrides(args.set), repeats=args.repeats, seeds=args.seeds,
                        early_stopping=not args.no_early_stopping, reuse_actors=args.reuse_actors)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    remote = args.storage if is_uri(args.storage) else None
    # With remote storage the driver keeps its files under the cache: a path that stays the same across job
    # submissions (each job runs in a fresh working directory), which the pickled Optuna journal relies on.
    storage = (cache_root() / "studies") if remote else Path(args.storage).expanduser().resolve()
    try:
        request = request_from(args)
        if args.resume:
            if remote and not args.name:
                raise StudyDirError(f"{args.storage}: --resume of a study in remote storage needs its --name")
            root = storage / args.name if args.name else latest_of(storage, Path(request.space).stem)
            location, request = StudyLocation(storage, root.name, remote), None
        else:
            location = StudyLocation(storage, args.name or default_name(Path(request.space).stem), remote)
        trials = run_study(location, request, resume=args.resume, address=args.address,
                           dashboard_host=args.dashboard_host)
    except (ConfigError, DataError, SpaceError, StudyDirError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"results: {location.root} ({len(trials)} trials)")
    if not args.no_report:
        report = build(location.root)
        location.push(report)
        print(f"report: {report / FILENAME}, {report / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
