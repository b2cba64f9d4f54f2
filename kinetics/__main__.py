"""python -m kinetics {synth,convert,class-names}: make, convert and inspect Kinetics-skeleton data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kinetics.convert import convert, write_class_names
from kinetics.errors import DataError
from kinetics.synth import SynthSpec, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kinetics", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="write synthetic clips in the raw Kinetics-skeleton release layout")
    synth.add_argument("--out", type=Path, required=True, help="directory for kinetics_{train,val}/ and label files")
    synth.add_argument("--classes", type=int, default=400,
                       help="number of classes (default 400 as Kinetics; at least 30, the kinetics-motion names)")
    synth.add_argument("--clips-per-class", type=int, default=16, help="training clips per class (default 16)")
    synth.add_argument("--val-clips-per-class", type=int, default=None,
                       help="validation clips per class (default: a quarter of the training clips, at least 2)")
    synth.add_argument("--seed", type=int, default=0)

    conv = commands.add_parser("convert", help="raw release (or synthetic) -> {train,val}_data.npy + _label.pkl")
    conv.add_argument("--raw", type=Path, required=True, help="directory with kinetics_{train,val}/ and label JSONs")
    conv.add_argument("--out", type=Path, required=True, help="directory for the converted arrays")
    conv.add_argument("--workers", type=int, default=None, help="parsing processes (default: cores, at most 8)")

    names = commands.add_parser("class-names", help="write class_names.json beside arrays made by the original tools")
    names.add_argument("--label-json", type=Path, required=True, help="kinetics_train_label.json of the release")
    names.add_argument("--out", type=Path, required=True, help="the directory holding train_data.npy")

    args = parser.parse_args(argv)
    try:
        if args.command == "synth":
            spec = SynthSpec(args.classes, args.clips_per_class, args.val_clips_per_class, args.seed)
            generate(args.out, spec)
            print(f"wrote synthetic raw data ({spec.classes} classes) to {args.out}")
        elif args.command == "convert":
            report = convert(args.raw, args.out, args.workers)
            print(json.dumps({k: v for k, v in report.items() if k != "generator"}, indent=2))
        else:
            print(f"wrote {len(write_class_names(args.label_json, args.out))} class names to {args.out}")
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
