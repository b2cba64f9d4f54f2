"""The report's statistics on constructed studies whose true answer is known (no Ray, no training)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from reports.comparisons import seed_comparisons, welch_interval
from reports.findings import across_subsets, analyse_subset, data_budget_slope, divergence_sentences
from reports.importance import importances
from reports.scaling import batch_exponent
from reports.scores import NoiseFloor, at_budget, expected_max, seed_noise

# The seed noise the synthetic set shows on the CPU-sized network: the pooled std of the last epoch's val top-1
# across seeds, 8.0 and 12.5 points on the two subsets by `python -m study.run --space sgd_lr --repeats 2 --seeds 2`
# (README, "Seed noise").
SEED_SD = 0.08


def _study(score_of, n: int = 24, subset: str = "kinetics-motion", seed: int = 0, extra_repeats=None) -> pd.DataFrame:
    """A completed study of ``n`` trials whose last-epoch score is ``score_of(lr, optimizer, wd, rng)``."""
    rng = np.random.default_rng(seed)
    lr, opt, wd = 10 ** rng.uniform(-4, 0, n), rng.choice(["sgd", "adam"], n), 10 ** rng.uniform(-6, -2, n)
    scores = np.array([score_of(a, b, c, rng) for a, b, c in zip(lr, opt, wd)])
    return pd.DataFrame({
        "subset": subset, "trial_id": [f"{subset}-{i}" for i in range(n)], "index": range(n),
        "experiment_id": 10_000 + np.arange(n), "lr": lr, "optimizer": opt, "weight_decay": wd, "batch_size": 16,
        "scheduler": "step", "repeat_of": None, "stop_reason": "completed", "last_val_top1": scores,
        "best_val_top1": scores + 0.01, "last_val_top5": scores, "epochs_run": 6, "epochs_planned": 6,
        "num_classes": 30, "val_clips": 180, "sampled": [json.dumps({"lr": x}) for x in lr], "sampled_by": "qmc",
        "folder": "f", "seed": 0})


def _only_lr_matters(lr, optimizer, wd, rng):
    return 0.6 - 0.06 * (math.log10(lr) + 1.5) ** 2 + rng.normal(0, SEED_SD)


def _noise(lr, optimizer, wd, rng):
    return 0.3 + rng.normal(0, SEED_SD)


def _analyse(trials: pd.DataFrame, subset: str = "kinetics-motion"):
    epochs = pd.DataFrame(columns=["subset", "trial_id", "epoch", "val_top1"])
    return analyse_subset(trials, epochs, subset, ["lr", "optimizer", "weight_decay"], [6])


def test_a_study_where_only_the_learning_rate_matters_ranks_it_first_with_an_interval_above_zero():
    found = _analyse(_study(_only_lr_matters))
    lr = found.importances[6]["lr"]
    assert found.detectable and set(found.mattering()) == {"lr"}
    assert lr.low > 0.3 and lr.p < 0.01
    assert max(found.importances[6].values(), key=lambda i: i.value) is lr
    text = " ".join(found.sentences)
    assert "Learning rate matters: it explains" in text and "optimizer (0.00" in text.split("Not detectable:")[1]


def test_a_pure_noise_study_says_no_detectable_sensitivity_and_ranks_nothing():
    found = _analyse(_study(_noise))
    assert not found.mattering()
    assert any("no detectable sensitivity" in s.lower() for s in found.sentences)
    assert not any(" matters:" in s for s in found.sentences)


def test_a_study_at_chance_says_so():
    found = _analyse(_study(lambda lr, o, wd, rng: 1 / 30 + rng.normal(0, 0.005)))
    assert not found.detectable and any("cannot be told apart from chance" in s for s in found.sentences)


def test_importance_interval_and_p_value_are_calibrated_on_noise():
    """Under pure noise the permutation p-value is uniform: few parameters 'matter' by chance."""
    hits = 0
    for seed in range(40):
        frame = _study(_noise, seed=seed).rename(columns={"last_val_top1": "score"})
        hits += importances(frame, ["lr"])["lr"].p < 0.05
    assert hits <= 5  # about 5% of 40 expected


def test_the_learning_rate_mattering_more_on_one_subset_is_found_with_its_interval():
    strong = _study(_only_lr_matters, subset="kinetics-392", seed=1)
    weak = _study(lambda lr, o, wd, rng: 0.4 - 0.01 * (math.log10(lr) + 1.5) ** 2 + rng.normal(0, SEED_SD),
                  subset="kinetics-motion", seed=2)
    trials = pd.concat([weak, strong])
    found = {s: _analyse(trials, s) for s in ("kinetics-motion", "kinetics-392")}
    lines = across_subsets(found)
    assert any(line.startswith("Learning rate matters more on kinetics-392") for line in lines), lines


def test_the_best_learning_rate_range_is_the_range_within_the_noise_of_the_best():
    found = _analyse(_study(_only_lr_matters))
    line = next(s for s in found.sentences if s.startswith("Learning rates "))
    low, high = (float(x) for x in line.split()[2:5:2])
    assert 10 ** -2.5 < low < 0.03 < high < 10 ** -0.5  # around the true optimum, 10^-1.5


@pytest.mark.parametrize("true_alpha", [0.5, 1.0])
@pytest.mark.parametrize("trials", [30, 240])
def test_a_known_batch_size_exponent_is_recovered_within_its_interval(true_alpha, trials):
    """At the synthetic set's seed noise, 30 single-seed trials give an interval that holds the true exponent but
    is too wide to choose between the linear and the square-root rule; 240 trials tell them apart."""
    rng = np.random.default_rng(3)
    batch, lr = 2 ** rng.integers(4, 9, trials), 10 ** rng.uniform(-4, 0, trials)
    score = 0.7 - 0.08 * (np.log10(lr) - true_alpha * np.log10(batch / 256) + 1) ** 2 + rng.normal(0, SEED_SD, trials)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = batch_exponent(pd.DataFrame({"lr": lr, "batch_size": batch, "score": score}))
    assert fitted.low <= true_alpha <= fitted.high
    if trials >= 240:
        other = 1.5 - true_alpha  # the other rule (0.5 <-> 1.0) is outside
        assert not fitted.low <= other <= fitted.high and fitted.high - fitted.low < 0.4


def test_welch_intervals_keep_their_coverage_with_four_seeds():
    """500 simulated comparisons of two configs of equal true accuracy (seed noise as the synthetic set shows):
    a nominal 95% interval excludes zero in about 5% of them; with a planted difference of 3 noise standard
    deviations at 4 seeds it finds the difference in most."""
    rng = np.random.default_rng(0)
    intervals = [welch_interval(rng.normal(0.5, SEED_SD, 4), rng.normal(0.5, SEED_SD, 4)) for _ in range(500)]
    false_alarms = sum(low > 0 or high < 0 for _, low, high in intervals)
    assert false_alarms / 500 <= 0.08
    found = sum(welch_interval(rng.normal(0.5 + 3 * SEED_SD, SEED_SD, 4), rng.normal(0.5, SEED_SD, 4))[1] > 0
                for _ in range(500))
    assert found / 500 >= 0.8  # python -m bench.bench_intervals prints both rates (README, "Seed noise")


def test_seed_comparisons_use_repeat_seeds_only_and_keep_the_search_score_apart():
    trials = _study(_noise, n=3)
    trials["last_val_top1"] = [0.90, 0.50, 0.40]  # the search's winner was lucky
    repeats = pd.DataFrame({
        "subset": "kinetics-motion", "trial_id": [f"r{i}" for i in range(8)], "repeat_of": ["kinetics-motion-0"] * 4 +
        ["kinetics-motion-1"] * 4, "stop_reason": "completed",
        "last_val_top1": [0.50, 0.52, 0.48, 0.51, 0.49, 0.51, 0.50, 0.50]})
    table = seed_comparisons(pd.concat([trials, repeats], ignore_index=True))
    (row,) = table.rows
    values = dict(zip([c.header for c in table.columns], row))
    assert values["A search-phase score"] == 0.90 and values["mean A"] == pytest.approx(0.5025)
    assert values["verdict"] == "not distinguishable from seed noise"  # pooling the 0.90 would have said "beats"


def test_the_noise_floor_comes_from_repeats_only_and_says_when_it_is_only_the_evaluation_noise():
    trials = _study(_noise, n=2)
    assert seed_noise(trials, "kinetics-motion") is None
    repeats = pd.DataFrame({"subset": "kinetics-motion", "repeat_of": ["kinetics-motion-0"] * 3,
                            "stop_reason": "completed", "last_val_top1": [0.50, 0.52, 0.54]})
    floor = seed_noise(pd.concat([trials, repeats], ignore_index=True), "kinetics-motion")
    assert floor.sd == pytest.approx(0.02) and floor.source == "seeds" and floor.runs == 3
    assert NoiseFloor(0.02, "seeds", 3, 1).within(0.60, 0.55) and not NoiseFloor(0.02, "seeds", 3, 1).within(0.60, 0.50)


def test_scores_at_a_rung_are_every_trial_that_reached_it_and_at_the_end_the_completed_ones():
    trials = pd.DataFrame({"subset": "s", "trial_id": ["a", "b", "c"], "stop_reason": ["completed", "stopped_by_asha",
                           "diverged"], "last_val_top1": [0.6, 0.2, np.nan]})
    epochs = pd.DataFrame({"subset": "s", "trial_id": ["a", "a", "b", "c"], "epoch": [1, 2, 1, 1],
                           "val_top1": [0.3, 0.6, 0.2, np.nan]})
    assert at_budget(trials, epochs, 1, 2).set_index("trial_id")["score"].to_dict() == {"a": 0.3, "b": 0.2}
    assert at_budget(trials, epochs, 2, 2).set_index("trial_id")["score"].to_dict() == {"a": 0.6}


def test_expected_max_matches_brute_force_and_ends_at_the_maximum():
    scores = np.array([0.2, 0.5, 0.1, 0.4])
    curve = expected_max(scores)
    assert curve[0] == pytest.approx(scores.mean())
    assert curve[-1] <= scores.max() and np.all(np.diff(curve) >= 0)
    draws = np.random.default_rng(0).choice(scores, (200_000, 2)).max(1).mean()
    assert curve[1] == pytest.approx(draws, abs=3e-3)


def test_divergence_names_per_optimizer_the_largest_learning_rate_that_trained_stably():
    """SGD diverges from lr 1.0 and Adam from 0.03 (an ASHA-stopped trial still trained stably): the report says so."""
    runs = [("sgd", 0.01, "completed"), ("sgd", 0.3, "stopped_by_asha"), ("sgd", 1.0, "diverged"),
            ("sgd", 3.0, "diverged"), ("adam", 1e-3, "completed"), ("adam", 0.03, "diverged")]
    search = pd.DataFrame(runs, columns=["optimizer", "lr", "stop_reason"])
    assert divergence_sentences(search, ["optimizer", "lr"]) == [
        "optimizer adam: training diverged from learning rate 0.03 (1 trials); the largest that trained stably was "
        "0.001.",
        "optimizer sgd: training diverged from learning rate 1 (2 trials); the largest that trained stably was 0.3."]
    stable = search[search["stop_reason"] != "diverged"]
    assert divergence_sentences(stable[stable["optimizer"] == "sgd"], ["lr"]) == [
        "No trial diverged; the largest learning rate tried, 0.3, trained stably."]


def test_each_budget_is_judged_against_the_seed_noise_measured_at_that_epoch():
    """Repeat runs close together at the epoch-2 rung (0.29/0.31, 0.24/0.26) but far apart at the end (0.40/0.65,
    0.45/0.60): the rung's spread of 0.04 to 0.30 is beyond its own noise, though within the final epoch's."""
    search = _study(_noise, n=5).assign(lr=[0.01, 0.03, 1e-4, 0.5, 0.9], last_val_top1=[0.55, 0.50] + [np.nan] * 3,
                                        stop_reason=["completed"] * 2 + ["stopped_by_asha"] * 3, epochs_run=[8, 8, 2, 2, 2],
                                        epochs_planned=8)
    repeats = search.iloc[[0, 0, 1, 1]].assign(trial_id=["r0", "r1", "r2", "r3"], repeat_of=["kinetics-motion-0"] * 2
                                               + ["kinetics-motion-1"] * 2, seed=[1, 2, 1, 2],
                                               last_val_top1=[0.40, 0.65, 0.45, 0.60])
    trials = pd.concat([search, repeats], ignore_index=True)
    epochs = pd.DataFrame({"subset": "kinetics-motion", "epoch": 2, "trial_id": list(trials["trial_id"]),
                           "val_top1": [0.30, 0.25, 0.05, 0.06, 0.04, 0.29, 0.31, 0.24, 0.26]})
    found = analyse_subset(trials, epochs, "kinetics-motion", ["lr"], [2, 8])
    pooled = {8: math.sqrt((0.25 ** 2 / 2 + 0.15 ** 2 / 2) / 2), 2: math.sqrt((0.02 ** 2 / 2 + 0.02 ** 2 / 2) / 2)}
    assert found.noise_at[8].sd == pytest.approx(pooled[8]) and found.noise_at[8].epoch is None
    assert found.noise_at[2].sd == pytest.approx(pooled[2]) and found.noise_at[2].epoch == 2
    assert found.budget == 2 and found.detectable and found.noise is found.noise_at[2]
    assert "at epoch 2" in found.sentences[0]


@pytest.mark.parametrize("gain,verdict", [(0.10, "fine-tuning is better"), (0.0, "no detectable difference")])
def test_fine_tuned_and_from_scratch_are_compared_at_the_deepest_budget_both_groups_reached(gain, verdict):
    """Eight trials at the epoch-2 rung, four of each; only three completed (two fine-tuned, one from scratch), too
    few for a comparison at the end: the comparison is made at epoch 2, and finds a planted gain, or none."""
    rng = np.random.default_rng(7)
    tuned = np.array([True, False] * 4)
    at_two = 0.06 + gain * tuned + rng.normal(0, 0.01, 8)
    trials = _study(_noise, n=8).assign(
        pretrained=np.where(tuned, "synthetic.pt", None), epochs_planned=8,
        stop_reason=["completed"] * 3 + ["stopped_by_asha"] * 5, epochs_run=[8, 8, 8, 2, 2, 2, 2, 2],
        last_val_top1=[0.7, 0.3, 0.6] + [np.nan] * 5)
    epochs = pd.DataFrame({"subset": "kinetics-motion", "trial_id": trials["trial_id"], "epoch": 2, "val_top1": at_two})
    found = analyse_subset(trials, epochs, "kinetics-motion", ["pretrained", "lr"], [2, 8])
    sentence = next(s for s in found.sentences if s.startswith("Pre-training: "))
    assert sentence.startswith("Pre-training: at epoch 2, fine-tuned trials score") and f"; {verdict}." in sentence
    assert "(4 trials)" in sentence and "from scratch (4)" in sentence


@pytest.mark.parametrize("true_slope", [0.06, 0.0])
def test_a_known_gain_per_doubling_of_the_training_set_is_recovered_within_its_interval(true_slope):
    """24 trials from 2 to 24 clips per class, the score rising by ``true_slope`` per doubling, with seed noise."""
    rng = np.random.default_rng(11)
    per_class = rng.uniform(2, 24, 24)
    rows = pd.DataFrame({"train_clips": 30 * per_class, "num_classes": 30,
                         "score": 0.2 + true_slope * np.log2(per_class) + rng.normal(0, SEED_SD, 24)})
    slope, low, high = data_budget_slope(rows)
    assert low <= true_slope <= high and low < slope < high and high - low < 0.1
    assert (low > 0) == (true_slope > 0)  # a real gain is found; none is not invented
