"""The driver's bookkeeping at scale, without training: per-result cost of the Parquet tables, per-trial cost of
Optuna (TPE with the journal storage), and building the report, for a study of 1,000 trials.

    python -m bench.bench_driver [--trials 1000] [--epochs 5] [--space full]

Result writing must cost the same per result at the end of a study as at its start (nothing quadratic in the
driver); the report over 1,000 trials must build in under a minute. Writes the figures with the machine to
bench/results/bench_driver.json.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from bench import results
from common.files import write_json, write_text
from reports.build import build
from study.searcher import make_sampler
from study.spaces import load_space
from training.results import MANIFEST, SPACE_COPY, TrialRecord, optuna_journal, write_record

optuna.logging.set_verbosity(optuna.logging.WARNING)


def fake_metrics(rng: np.random.Generator, epoch: int) -> dict:
    top1 = float(min(1.0, rng.uniform(0, 0.1) * epoch))
    return {"epoch": epoch, "train_loss": float(rng.uniform(1, 4)), "train_top1": top1, "val_loss": float(rng.uniform(1, 4)),
            "val_top1": top1 * 0.9, "val_top5": min(1.0, top1 * 2), "inference_ms_per_clip": 1.0, "epoch_lr": 0.1,
            "epoch_time_s": 10.0, "clips_per_s": 100.0, "diverged": False, "node": "bench", "node_id": "bench",
            "motion_top1": float("nan"), "motion_mean_class": float("nan"), "train_clips": 713, "val_clips": 177,
            "num_classes": 30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--space", default="full")
    results.add_out_argument(parser, "bench_driver")
    args = parser.parse_args()
    space = load_space(args.space)
    root = Path(tempfile.mkdtemp(prefix="bench-driver-")) / "big"
    root.mkdir(parents=True)
    write_json(root / MANIFEST, {"name": "big", "created_at": time.time(), "status": "finished",
                                 "request": {"space": str(space.path), "subsets": ["kinetics-motion"]},
                                 "budgets": list(range(1, args.epochs + 1))})
    write_text(root / SPACE_COPY, space.dump())
    journal = optuna_journal(root, "kinetics-motion")
    journal.parent.mkdir()
    study = optuna.create_study(study_name="kinetics-motion", direction="maximize",
                                storage=JournalStorage(JournalFileBackend(str(journal))),
                                sampler=make_sampler(space.sampler, 0, space.startup_trials))
    rng = np.random.default_rng(0)
    ask_tell, writes = [], []
    for index in range(args.trials):
        start = time.perf_counter()
        trial = study.ask()
        space.define_by_run(trial)
        ask = time.perf_counter() - start
        config = space.to_config(trial.params, cpu=True, overrides={"subset": "kinetics-motion"})
        record = TrialRecord("big", "kinetics-motion", f"t{index:05d}", index, 10_000 + index, config, "synthetic",
                             folder=f"{index}_30_{10_000 + index}_kinetics_motion_30_From_Scratch", sampled=trial.params,
                             optuna_number=trial.number, sampled_by=space.sampler)
        epochs = int(rng.integers(1, args.epochs + 1))
        for epoch in range(1, epochs + 1):
            record.add_epoch(fake_metrics(rng, epoch))
            start = time.perf_counter()
            write_record(root, record)
            writes.append((index, time.perf_counter() - start))
        record.finish("completed" if epochs == args.epochs else "stopped_by_asha")
        write_record(root, record)
        start = time.perf_counter()
        last = record.epochs[epochs]["val_top1"]
        study.tell(trial, last if not math.isnan(last) else None)
        ask_tell.append(ask + time.perf_counter() - start)
    tenth = max(1, args.trials // 10)
    first = [t for i, t in writes if i < tenth]
    last = [t for i, t in writes if i >= args.trials - tenth]
    print(f"python {platform.python_version()}, optuna {optuna.__version__}, {platform.machine()}; {args.trials} "
          f"trials, up to {args.epochs} epochs, space {args.space}, {len(writes)} results")
    early, late = statistics.median(first), statistics.median(last)
    print(f"  result write (both tables): first 10% of trials {1e3 * early:.2f} ms, last 10% {1e3 * late:.2f} ms "
          f"per result (ratio {late / early:.2f})")
    print(f"  Optuna ask+tell (TPE, journal): first 10% {1e3 * statistics.median(ask_tell[:tenth]):.1f} ms, last 10% "
          f"{1e3 * statistics.median(ask_tell[-tenth:]):.1f} ms per trial; all {sum(ask_tell):.1f} s")
    start = time.perf_counter()
    build(root)
    report_s = time.perf_counter() - start
    print(f"  report over {args.trials} trials: {report_s:.1f} s")
    figures = {"trials": args.trials, "epochs": args.epochs, "space": args.space, "results": len(writes),
               "result_write_ms": {"first_tenth": round(1e3 * early, 3), "last_tenth": round(1e3 * late, 3),
                                   "ratio": round(late / early, 2)},
               "optuna_ask_tell_ms": {"first_tenth": round(1e3 * statistics.median(ask_tell[:tenth]), 2),
                                      "last_tenth": round(1e3 * statistics.median(ask_tell[-tenth:]), 2),
                                      "all_s": round(sum(ask_tell), 1)},
               "report_s": round(report_s, 1), "report_target_s": 60}
    print(f"written to {results.write('bench_driver', figures, results.command(), args.out)}")


if __name__ == "__main__":
    main()
