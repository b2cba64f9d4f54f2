"""bench_overhead's peer: the study's own trials, replayed by plain Optuna with the trainer in process, do the same
arithmetic as they did in the study (so the two wall times compare the same work)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.bench_overhead import concurrency, run_peer, trial_jobs
from training.results import EPOCHS, read_frame


def test_the_peer_replays_the_studys_trials_with_the_same_scores(smoke, tmp_path):
    root, trials = smoke
    jobs = trial_jobs(root)
    assert len(jobs) == len(trials) and [epochs for _, epochs in jobs] == \
        trials.sort_values("started_at")["epochs_run"].tolist()
    assert 1 <= concurrency(root) <= 2  # the smoke study runs two trials at once on the suite's 2-CPU Ray
    chosen = jobs[:2]
    assert run_peer(chosen, workers=1, threads=1, out=tmp_path) > 0
    recorded = read_frame(root, EPOCHS)
    ordered = trials.sort_values("started_at").head(2)
    for index, (_, row) in enumerate(ordered.iterrows()):
        peer = pd.read_csv(next(tmp_path.glob(f"{index}_*")) / "save_values_csv" / "epochs.csv")
        study = recorded[recorded["trial_id"] == row["trial_id"]].sort_values("epoch")
        for metric in ("train_loss", "val_top1"):  # NaN where a trial diverged
            np.testing.assert_array_equal(peer[metric].to_numpy(float), study[metric].to_numpy(float), metric)
