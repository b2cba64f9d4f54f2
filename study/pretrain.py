"""python -m study.pretrain: make the checkpoint the `pretrained` space fine-tunes from, offline.

Trains the network on the synthetic set's classes that are not kinetics-motion classes and writes its state_dict
under the authors' parameter names (a paper-shape checkpoint loads into their net.st_gcn.Model unchanged). Without
--out the checkpoint goes to the cache that `pretrained: synthetic` reads (made once per network shape); a study
makes it on first use too, so running this first only moves the wait.

Examples:
  python -m study.pretrain                       # the CPU-sized network's checkpoint, cached
  python -m study.pretrain --profile paper       # the paper-shape network (hours on a CPU)
  python -m study.pretrain --out ckpt.pt         # a file of your own
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kinetics.errors import DataError
from training.config import CPU_PROFILE, ConfigError, from_dict
from training.pretrain import pretrain, recipe_for, sha256, synthetic_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m study.pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=("cpu", "paper"), default="cpu",
                        help="the network to pretrain: the labelled CPU-sized variant (default) or the paper's")
    parser.add_argument("--out", type=Path, help="write the checkpoint here instead of the cache")
    args = parser.parse_args(argv)
    try:
        config = from_dict(dict(CPU_PROFILE) if args.profile == "cpu" else {}, source="--profile")
        path = pretrain(recipe_for(config), args.out) if args.out else synthetic_checkpoint(config)
    except (ConfigError, DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"checkpoint: {path} (sha256 {sha256(path)[:12]}); fine-tune it with pretrained: {path} "
          f"(or pretrained: synthetic for this network shape)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
