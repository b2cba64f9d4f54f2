"""python -m study.train: one ST-GCN training run without Ray, writing its experiment folder.

Examples:
  python -m study.train --cpu-profile                      # synthetic data, CPU-sized network, a few minutes
  python -m study.train --config my.yaml --data /data/kinetics-converted --out runs/
  python -m study.train --config my.yaml --out runs/ --resume runs/0_30_12345_kinetics_motion_30_From_Scratch
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from common import logs
from kinetics.errors import DataError
from kinetics.source import open_data
from training.config import CPU_PROFILE, FIELD_TYPES, ConfigError, from_dict, load
from training.experiment import Experiment, best


def _overrides(args: argparse.Namespace) -> dict:
    values = dict(CPU_PROFILE) if args.cpu_profile else {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        if key not in FIELD_TYPES:
            raise ConfigError(f"--set {item}: unknown field {key!r}")
        values[key] = yaml.safe_load(value)
    for key in ("data", "subset", "seed", "epochs", "lr", "optimizer", "batch_size", "scheduler", "pretrained"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m study.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="YAML/JSON file of config fields (others: the paper recipe)")
    parser.add_argument("--cpu-profile", action="store_true",
                        help="the labelled CPU-sized variant (width x0.125, frame stride 3, window 40, no random move, "
                             f"{CPU_PROFILE['epochs']} epochs)")
    parser.add_argument("--data", help="converted dataset directory, or 'synthetic' (default)")
    parser.add_argument("--subset", choices=("kinetics-motion", "kinetics-392"))
    parser.add_argument("--optimizer", choices=("sgd", "adam", "adamw"))
    parser.add_argument("--scheduler", choices=("step", "cosine", "plateau", "none"))
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--pretrained", help="checkpoint of the original ST-GCN release to fine-tune")
    parser.add_argument("--set", action="append", metavar="FIELD=VALUE", help="any other config field")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="where experiment folders go (default runs/)")
    parser.add_argument("--index", type=int, default=0, help="experiment index, the folder name's first field")
    parser.add_argument("--resume", type=Path, metavar="FOLDER", help="continue the run in this experiment folder")
    logs.add_options(parser)
    args = parser.parse_args(argv)
    logs.configure(args.log_level)
    say = logs.get("trainer").info
    try:
        overrides = _overrides(args)
        config = load(args.config, overrides) if args.config else from_dict(overrides, source="command line")
        dataset = open_data(config.data)
        say(f"data: {dataset.root} ({dataset.source}); model: {config.model_variant}")
        if args.resume:
            experiment = Experiment.resumed(config, dataset, args.resume)
        else:
            experiment = Experiment(config, dataset, args.out, index=args.index)
        say(f"experiment folder: {experiment.folder.path}")
        while not experiment.finished:
            experiment.step()
            experiment.save_checkpoint(experiment.folder.path)
        history = experiment.trainer.history
        outcome = "diverged" if experiment.trainer.diverged else "completed"
        say(f"{outcome}: best val top-1 {100 * best(history):.1f}% over {len(history)} epochs; "
            f"results in {experiment.folder.path}")
    except (ConfigError, DataError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
