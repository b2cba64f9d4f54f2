"""A storage outage of minutes, end to end: a small study on a file:// storage whose Tune experiment folder is
replaced by a file (every write under it fails, even for root) from its first recorded epoch for ``--outage-s``
seconds, then put back.

    python -m bench.bench_outage [--outage-s 600] [--data DIR] [--address HOST:PORT] [--out bench/results]

Checks what docs/faults.md promises and prints each check: the study exits 0; no trial errored or was retried;
every epoch is recorded once; each trial's newest checkpoint at the storage is its last epoch; the driver's tables
at the storage equal its local ones; the driver said once that the storage stopped taking checkpoints and once that
it took them again. Writes the outcome with the machine it ran on to ``--out``/bench_outage.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench import results
from training.experiment import CHECKPOINT
from training.results import EPOCHS, TRIALS, read_frame

ROOT = Path(__file__).resolve().parents[1]


def _recorded(root: Path) -> int:
    return len(read_frame(root, EPOCHS)) if (root / EPOCHS).is_dir() else 0


def run(work: Path, outage_s: float, data: str | None, address: str | None) -> dict:
    bucket, name, cache = work / "bucket", "outage", work / "cache"
    args = [sys.executable, "-m", "study.run", "--space", "smoke", "--subset", "kinetics-motion", "--num-samples", "2",
            "--set", "epochs=6", "--no-early-stopping", "--storage", f"file://{bucket}", "--name", name, "--no-report",
            *(["--data", data] if data else []), *(["--address", address] if address else [])]
    log = work / "driver.log"
    with open(log, "w") as out:
        driver = subprocess.Popen(args, cwd=work, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT), "STGCN_STUDY_CACHE": str(cache)})
        local, search = cache / "studies" / name, bucket / name / "search"
        while not (_recorded(local) >= 1 and search.is_dir()) and driver.poll() is None:
            time.sleep(0.2)
        away = search.with_name("search.away")
        search.rename(away)
        search.write_text("the storage is out")
        began, epochs_at_start = time.monotonic(), _recorded(local)
        while time.monotonic() - began < outage_s and driver.poll() is None:
            time.sleep(1)
        lasted = time.monotonic() - began
        epochs_during = _recorded(local) - epochs_at_start
        search.unlink()
        away.rename(search)
        exit_status = driver.wait()
    said = log.read_text()
    trials = read_frame(local, TRIALS)
    epochs = read_frame(local, EPOCHS)
    newest_is_last = []
    for trial_id, epochs_run in zip(trials["trial_id"], trials["epochs_run"]):
        folder = next(p for p in search.iterdir() if p.is_dir() and p.name.endswith(trial_id))
        newest = max((p for p in folder.glob("checkpoint_*") if (p / CHECKPOINT).is_file()), key=lambda p: p.name)
        newest_is_last.append(torch.load(newest / CHECKPOINT, weights_only=False)["epoch"] == epochs_run)
    remote = bucket / name

    def same(table: str) -> bool:
        mine, theirs = read_frame(local, table), read_frame(remote, table)
        key = ["trial_id", "epoch"] if table == EPOCHS else ["trial_id"]
        return mine.sort_values(key).reset_index(drop=True).equals(theirs.sort_values(key).reset_index(drop=True))

    checks = {
        "the study exits 0": exit_status == 0,
        "no trial errored or was retried": bool((trials["stop_reason"] != "errored").all()
                                                and (trials["retries"] == 0).all()),
        "every epoch recorded once": bool(not epochs.duplicated(["trial_id", "epoch"]).any() and all(
            sorted(g["epoch"]) == list(range(1, int(n) + 1))
            for (_, g), n in zip(epochs.groupby("trial_id"), trials.set_index("trial_id").sort_index()["epochs_run"]))),
        "each trial's newest checkpoint at the storage is its last epoch": all(newest_is_last),
        "the tables at the storage equal the local ones": same(TRIALS) and same(EPOCHS),
        "said once that the storage was out": said.count("could not upload its checkpoint") == 1,
        "said once that it was back": said.count("takes the trials' checkpoints again") == 1,
    }
    return {"outage_s": round(lasted, 1), "epochs_recorded_during_outage": int(epochs_during),
            "trials": len(trials), "checks": checks, "held": all(checks.values())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outage-s", type=float, default=600.0, help="how long the storage is out (default 600)")
    parser.add_argument("--data", help="converted dataset (default: the cached synthetic set)")
    parser.add_argument("--address", help="a running Ray cluster (default: a local one)")
    results.add_out_argument(parser, "bench_outage")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stgcn-outage-") as work:
        result = run(Path(work), args.outage_s, args.data, args.address)
    for check, held in result["checks"].items():
        print(f"{'held' if held else 'FAILED'}: {check}")
    command = "python -m bench.bench_outage" + (f" --outage-s {args.outage_s:g}" if args.outage_s != 600 else "")
    path = results.write("bench_outage", result, command, args.out)
    print(f"outage of {result['outage_s']:.0f} s, {result['epochs_recorded_during_outage']} epoch(s) recorded during it; "
          f"written with the machine to {path}")
    return 0 if result["held"] else 1


if __name__ == "__main__":
    sys.exit(main())
