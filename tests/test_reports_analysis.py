"""The report's statistics on studies whose truth is known (no Ray, no training): the cases that were once reported
wrong, each checked on a study drawn from a realistic truth (bench/simulated_study.py) or built by hand. The rates
over many draws are tests/test_verdicts.py's and bench/bench_verdicts.py's."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bench.simulated_study import SEED_SD, Design, Truth, simulate
from reports import power
from reports.comparisons import seed_comparisons, welch_interval
from reports.findings import across_subsets, analyse, data_budget_slope, divergence_sentences
from reports.inference import (
    axis_of,
    best_set,
    groups_of,
    gupta_constant,
    holm,
    parameter_p,
    parameter_p_along,
    parameter_test,
    permutation_p,
    shuffled,
    shuffles,
)
from reports.reproduction import reproduction_table
from reports.scaling import batch_exponent
from reports.scores import NoiseFloor, at_budget, expected_max, headline_budget, seed_noise

MOTION, K392 = "kinetics-motion", "kinetics-392"
WINDOW = Truth()  # lr decides between chance and 60%


def _analyse(design: Design, seed: int = 0):
    trials, epochs, truth = simulate(design, seed)
    return analyse(trials, epochs, list(design.subsets), design.parameters, design.levels), trials, truth


def _text(found) -> str:
    return " ".join(line for f in found.values() for line in f.sentences)


def test_under_asha_a_learning_rate_that_decides_between_chance_and_60_percent_is_found_at_the_first_rung():
    """Once a report judged at the deepest 'detectable' budget, where ASHA's few survivors barely differ, and said
    there was no sensitivity. The headline is now the first rung, where every trial is, fixed before any score."""
    design = Design(trials=20, subsets={MOTION: WINDOW, K392: replace(WINDOW, classes=32)})
    found, _, _ = _analyse(design, seed=1)
    for subset, f in found.items():
        assert f.budget == 2 and f.why.startswith("the first budget")
        assert f.learns() and "lr" in f.mattering(), subset
        assert any(s.startswith("Learning rate matters at epoch 2 (permutation p") for s in f.sentences)
        assert not any("no effect detected" in s and s.startswith("Learning rate") for s in f.sentences)
        assert "The learning rates that learned form one range" in " ".join(f.sentences)


@pytest.mark.parametrize("trials", [5, 10, 30, 60])
def test_pure_seed_noise_is_not_called_an_effect_and_says_what_could_have_been_found(trials):
    design = Design(trials=trials, optimizers=("sgd", "adam"),
                    subsets={MOTION: Truth(top=0.3, window=None, diverge_above=None)})
    found, _, _ = _analyse(design, seed=trials)
    f = found[MOTION]
    assert not f.mattering() and not any(" matters at epoch" in s for s in f.sentences)
    text = _text(found)
    assert "beyond" not in text and "within the noise" not in text
    if trials >= 10:
        assert "would have been found with 80% probability" in text
    else:  # five trials: no test can reach the corrected level, and the page says so instead of attributing
        assert "not testable at epoch" in text and "the next step says how many trials would reach it" in text


def test_a_study_at_chance_says_no_trial_is_above_it_and_attributes_nothing():
    design = Design(trials=12, subsets={MOTION: Truth(top=0.0)})
    found, _, _ = _analyse(design)
    f = found[MOTION]
    assert not f.learns() and not f.mattering()
    assert any(s.startswith("No trial is shown above chance at epoch 2") for s in f.sentences)
    assert not any("trials learned (each above chance" in s for s in f.sentences)


def test_the_best_of_many_trials_at_chance_is_not_above_chance():
    """The best of 60 binomial draws at chance is often 2 standard deviations above it; the test corrects for it."""
    rng = np.random.default_rng(0)
    scores = rng.binomial(180, 1 / 30, 60) / 180
    trials = pd.DataFrame({"subset": MOTION, "trial_id": [f"t{i}" for i in range(60)], "score": scores})
    assert scores.max() > 1 / 30 + 2 * math.sqrt(1 / 30 * 29 / 30 / 180)
    from reports.inference import above_chance_p, best_above_chance_p
    assert above_chance_p(scores.max(), 180, 1 / 30) < 0.05 < best_above_chance_p(trials["score"], 180, 1 / 30)


def test_holm_adjusts_each_family_and_keeps_untestable_claims_out():
    assert holm([0.01, 0.04, math.nan, 0.03]) == pytest.approx([0.03, 0.06, math.nan, 0.06], nan_ok=True)


def test_permutation_p_values_are_uniform_under_the_null_and_small_for_a_clear_effect():
    rng = np.random.default_rng(1)
    codes = np.repeat([0, 1, 2], 6)
    nulls = [permutation_p(codes, rng.normal(size=18), 3, seed) for seed in range(200)]
    assert 0.02 <= np.mean(np.array(nulls) < 0.05) <= 0.09
    assert permutation_p(codes, np.array([0.0] * 6 + [1.0] * 6 + [0.0] * 6) + rng.normal(0, 0.1, 18), 3) < 0.001


def test_the_detectable_difference_is_found_four_times_in_five_by_the_test_that_is_run():
    """Three choices, 6 trials each, 8 points of noise: the difference power.detectable states, planted between the
    first and the last choice, is found by parameter_test at 0.01 about 80% of the time on fresh draws."""
    frame = pd.DataFrame({"optimizer": np.repeat(["adam", "adamw", "sgd"], 6)})
    delta = power.detectable(frame, "optimizer", SEED_SD, 0.01)
    rng = np.random.default_rng(2)
    shift = np.repeat([-delta / 2, 0.0, delta / 2], 6)
    found = [parameter_test(frame.assign(score=0.5 + shift + rng.normal(0, SEED_SD, 18)), "optimizer", seed=s).p <= 0.01
             for s in range(200)]
    assert 0.70 <= np.mean(found) <= 0.90


def test_the_detectable_difference_is_where_the_simulated_power_first_reaches_80_percent():
    """power.detectable bisects each simulated study on its own; its answer is the point of the half-point grid where
    the power over all of them (the share of studies whose test finds the difference planted between the first and
    the last choice) first reaches 80%."""
    optimizer = pd.Series(np.repeat(["a", "b", "c", "d"], 3))
    delta = power.detectable(pd.DataFrame({"optimizer": optimizer}), "optimizer", 0.06, 0.05, draws=20)
    shift = (optimizer == "d").to_numpy(float) / 2 - (optimizer == "a").to_numpy(float) / 2

    def share_found(difference: float) -> float:
        return power._found_share(optimizer, lambda rng: 0.5 + difference * shift + rng.normal(0.0, 0.06, 12), 0.05,
                                  20)

    assert delta is not None and 0 < delta < 1
    assert share_found(delta) >= 0.8 > share_found(delta - 1 / 256)


@pytest.mark.parametrize("values", [np.geomspace(1e-4, 0.3, 14), np.repeat(["adam", "adamw", "sgd"], 5),
                                    np.array([8.0, 16.0, np.nan, 32.0, 64.0] * 3)])
def test_the_test_along_a_line_of_scores_gives_the_tests_own_p_value_at_every_point(values):
    """The power analysis tests one simulated study at several planted differences through parameter_p_along (the
    shuffles gathered once): at every difference it must give what parameter_p gives on those scores, a number's
    order test and a value missing in some trials included."""
    rng = np.random.default_rng(len(values))
    x = pd.Series(values)
    groups = groups_of(x)
    noise, shift = rng.normal(0.5, 0.05, len(x)).round(2), rng.normal(size=len(x))  # rounded: ties among the scores
    along = parameter_p_along(groups, axis_of(x, groups), noise, shift, seed=3, permutations=500)
    for difference in (0.0, 0.02, 0.1, 0.5):
        assert along(difference) == parameter_p(groups, axis_of(x, groups), noise + difference * shift, 3, 500)


def test_subsets_are_compared_at_the_one_named_budget_even_when_one_shows_no_effect():
    """Once the two subsets were compared at different budgets (one at epoch 8, one at epoch 2) without saying
    so, and not at all when one subset showed no sensitivity, which is the most interesting answer."""
    design = Design(trials=20, subsets={MOTION: WINDOW, K392: replace(WINDOW, classes=32, top=0.0)})
    found, _, _ = _analyse(design, seed=3)
    assert found[MOTION].mattering() and not found[K392].learns()
    lines = across_subsets(found, design.parameters)
    lr = next(line for line in lines if "learning rate's effect" in line)
    assert lr.startswith("At epoch 2, learning rate's effect differs between the subsets, larger on kinetics-motion")
    assert lines[-1] == (f"Learning rates that learned at epoch 2: {lines[-1].split(': ', 1)[1].split(';')[0]}; "
                         "kinetics-392: no trial shown above chance.")


def test_the_same_effect_on_both_subsets_is_not_called_different():
    design = Design(trials=20, subsets={MOTION: WINDOW, K392: replace(WINDOW, classes=32)})
    found, _, _ = _analyse(design, seed=4)
    assert any(line.startswith("At epoch 2, no difference detected in learning rate's effect")
               for line in across_subsets(found, design.parameters))


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_a_planted_batch_size_exponent_on_a_chance_floor_is_in_its_interval_and_the_other_rule_is_not(alpha):
    """A window that flattens at chance on both sides and moves with the batch size (100 trials, no early stopping,
    not the fitter's bell): a quadratic ridge once reported alpha = 1 as 0.70 [0.50, 0.93]."""
    design = Design(trials=100, reduction=0, lr_range=(-5.0, 0.0), batches=(16, 32, 64, 128, 256),
                    subsets={MOTION: replace(WINDOW, alpha=alpha, window=(-2.2, -1.2), diverge_above=-0.3)})
    held = excluded = 0
    for seed in range(4):  # a 90% interval misses one study in ten: three of four hold it (coverage: bench_verdicts)
        trials, epochs, _ = simulate(design, seed)
        fitted = batch_exponent(at_budget(trials, epochs, 8, [8]), 1 / 30)
        held += fitted.low <= alpha <= fitted.high
        excluded += not fitted.low <= 1.5 - alpha <= fitted.high  # the other rule
    assert held >= 3 and excluded >= 3


def test_too_few_trials_or_batch_sizes_give_no_exponent_and_say_why():
    rows = pd.DataFrame({"lr": [0.01, 0.1], "batch_size": [16, 32], "score": [0.5, 0.1]})
    assert "at least 12 trials over 3 batch sizes" in batch_exponent(rows, 1 / 30)


def test_not_diverging_is_not_called_learning():
    """'the largest learning rate tried, 0.269, trained stably' was once said of a trial that stayed at chance."""
    runs = [("sgd", 0.01, "completed"), ("sgd", 0.3, "stopped_by_asha"), ("sgd", 1.0, "diverged"),
            ("sgd", 3.0, "diverged"), ("adam", 1e-3, "completed"), ("adam", 0.03, "diverged")]
    search = pd.DataFrame(runs, columns=["optimizer", "lr", "stop_reason"])
    assert divergence_sentences(search, ["optimizer", "lr"], None) == [
        "optimizer adam: training diverged (loss NaN) from learning rate 0.03 (1 trial); the largest that did not "
        "diverge was 0.001.",
        "optimizer sgd: training diverged (loss NaN) from learning rate 1 (2 trials); the largest that did not "
        "diverge was 0.3."]
    calm = search[search["stop_reason"] != "diverged"]
    (line,) = divergence_sentences(calm[calm["optimizer"] == "sgd"], ["lr"], None)
    assert "stably" not in line and "not diverging is not learning" in line


def test_diverged_trials_count_at_chance_at_the_budget_where_asha_would_have_judged_them():
    trials = pd.DataFrame({"subset": "s", "trial_id": ["a", "b", "c", "d"], "num_classes": 20,
                           "stop_reason": ["completed", "stopped_by_asha", "diverged", "diverged"],
                           "epochs_run": [4, 2, 1, 3], "last_val_top1": [0.6, 0.2, np.nan, np.nan]})
    epochs = pd.DataFrame({"subset": "s", "trial_id": ["a", "a", "b", "b", "c", "d", "d", "d"],
                           "epoch": [2, 4, 1, 2, 1, 1, 2, 3], "val_top1": [0.3, 0.6, 0.1, 0.2, np.nan, 0.1, 0.12, np.nan]})
    at_two = at_budget(trials, epochs, 2, [2, 4]).set_index("trial_id")
    assert at_two["score"].to_dict() == {"a": 0.3, "b": 0.2, "d": 0.12, "c": 0.05}
    assert at_two["diverged"].to_dict() == {"a": False, "b": False, "d": False, "c": True}
    at_four = at_budget(trials, epochs, 4, [2, 4]).set_index("trial_id")
    assert at_four["score"].to_dict() == {"a": 0.6, "d": 0.05}


def test_the_headline_budget_is_declared_or_the_first_and_never_chosen_by_the_scores():
    assert headline_budget([2, 6, 8], None)[0] == 2 and headline_budget([2, 6, 8], 6)[0] == 6
    assert headline_budget([8], None) == (8, "the last epoch, which every trial ran")


def test_the_best_is_reported_without_the_winners_curse_where_seed_repeats_exist():
    """The search's best scored 90% once; its repeats average 50%: the sentences, the reproduction check and the
    seed comparison use the repeats, never the lucky run as its result."""
    design = Design(trials=12, reduction=0, subsets={MOTION: WINDOW})
    trials, epochs, _ = simulate(design, 6)
    best = trials.loc[trials["last_val_top1"].idxmax(), "trial_id"]
    trials.loc[trials["trial_id"] == best, "last_val_top1"] = 0.90
    epochs.loc[(epochs["trial_id"] == best) & (epochs["epoch"] == 8), "val_top1"] = 0.90
    repeats = trials[trials["trial_id"] == best].iloc[[0, 0, 0]].assign(
        trial_id=["r1", "r2", "r3"], repeat_of=best, last_val_top1=[0.48, 0.50, 0.52], seed=[1, 2, 3])
    everything = pd.concat([trials, repeats], ignore_index=True)
    epochs = pd.concat([epochs, pd.DataFrame({"subset": MOTION, "trial_id": ["r1", "r2", "r3"], "epoch": 8,
                                              "val_top1": [0.48, 0.50, 0.52]})], ignore_index=True)
    found = analyse(everything, epochs, [MOTION], ["lr"], [8])
    line = next(s for s in found[MOTION].sentences if s.startswith("Best at epoch 8"))
    assert "(90.0%, the highest of 12, so biased upward); its 3 seed repeats score 50.0% [" in line
    assert "Could be the best (a set holding the truly best config with 95% probability" in line
    (row,) = reproduction_table(everything, found).rows
    assert row[4] == pytest.approx(0.50) and row[8] == "mean of 3 seed repeats"


def test_gupta_sets_hold_the_best_config_as_often_as_they_say():
    rng = np.random.default_rng(7)
    assert gupta_constant(10) > 1.96 / math.sqrt(2)  # wider than one pairwise comparison, as ten looks need
    held = 0
    for _ in range(400):
        truth = np.array([0.5] * 3 + [0.4] * 7)  # three tied best configs: the least favourable near case
        scores = truth + rng.normal(0, SEED_SD, 10)
        held += best_set(scores, SEED_SD)[:3].any()
    assert held / 400 >= 0.93


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
    assert found / 500 >= 0.8  # python -m bench.bench_intervals prints both rates (docs/report.md, "Seed noise")


def _study(n: int, subset: str = MOTION) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    lr = 10 ** rng.uniform(-4, 0, n)
    return pd.DataFrame({
        "subset": subset, "trial_id": [f"{subset}-{i}" for i in range(n)], "index": range(n),
        "experiment_id": 10_000 + np.arange(n), "lr": lr, "optimizer": "sgd", "batch_size": 16, "scheduler": "step",
        "repeat_of": None, "stop_reason": "completed", "last_val_top1": 0.3 + rng.normal(0, SEED_SD, n),
        "epochs_run": 6, "epochs_planned": 6, "num_classes": 30, "val_clips": 180,
        "sampled": [json.dumps({"lr": x}) for x in lr], "sampled_by": "qmc", "folder": "f", "seed": 0})


def test_seed_comparisons_use_repeat_seeds_only_and_keep_the_search_score_apart():
    trials = _study(3)
    trials["last_val_top1"] = [0.90, 0.50, 0.40]  # the search's winner was lucky
    repeats = pd.DataFrame({
        "subset": MOTION, "trial_id": [f"r{i}" for i in range(8)], "repeat_of": ["kinetics-motion-0"] * 4 +
        ["kinetics-motion-1"] * 4, "stop_reason": "completed",
        "last_val_top1": [0.50, 0.52, 0.48, 0.51, 0.49, 0.51, 0.50, 0.50]})
    table = seed_comparisons(pd.concat([trials, repeats], ignore_index=True))
    (row,) = table.rows
    values = dict(zip([c.header for c in table.columns], row))
    assert values["A search-phase score"] == 0.90 and values["mean A"] == pytest.approx(0.5025)
    assert values["verdict"] == "not distinguishable from seed noise"  # pooling the 0.90 would have said "beats"


def test_the_noise_floor_comes_from_repeats_only_and_says_when_it_is_only_the_evaluation_noise():
    trials = _study(2)
    assert seed_noise(trials, MOTION) is None
    repeats = pd.DataFrame({"subset": MOTION, "repeat_of": ["kinetics-motion-0"] * 3,
                            "stop_reason": "completed", "last_val_top1": [0.50, 0.52, 0.54]})
    floor = seed_noise(pd.concat([trials, repeats], ignore_index=True), MOTION)
    assert floor.sd == pytest.approx(0.02) and floor.source == "seeds" and floor.runs == 3 and floor.dof == 2
    assert "seed noise not measured" in NoiseFloor(0.02, "evaluation", 0, 0).describe()


def test_each_budget_has_the_seed_noise_measured_at_that_epoch():
    """Repeat runs close together at the epoch-2 rung but far apart at the end."""
    search = _study(5).assign(lr=[0.01, 0.03, 1e-4, 0.5, 0.9], last_val_top1=[0.55, 0.50] + [np.nan] * 3,
                              stop_reason=["completed"] * 2 + ["stopped_by_asha"] * 3, epochs_run=[8, 8, 2, 2, 2],
                              epochs_planned=8)
    repeats = search.iloc[[0, 0, 1, 1]].assign(trial_id=["r0", "r1", "r2", "r3"], repeat_of=["kinetics-motion-0"] * 2
                                               + ["kinetics-motion-1"] * 2, seed=[1, 2, 1, 2],
                                               last_val_top1=[0.40, 0.65, 0.45, 0.60])
    trials = pd.concat([search, repeats], ignore_index=True)
    epochs = pd.DataFrame({"subset": MOTION, "epoch": 2, "trial_id": list(trials["trial_id"]),
                           "val_top1": [0.30, 0.25, 0.05, 0.06, 0.04, 0.29, 0.31, 0.24, 0.26]})
    found = analyse(trials, epochs, [MOTION], ["lr"], [2, 8])[MOTION]
    pooled = {8: math.sqrt((0.25 ** 2 / 2 + 0.15 ** 2 / 2) / 2), 2: math.sqrt((0.02 ** 2 / 2 + 0.02 ** 2 / 2) / 2)}
    assert found.noise_at[8].sd == pytest.approx(pooled[8]) and found.noise_at[8].epoch is None
    assert found.noise_at[2].sd == pytest.approx(pooled[2]) and found.noise_at[2].epoch == 2
    assert found.budget == 2 and found.noise is found.noise_at[2]


def test_expected_max_matches_brute_force_and_ends_at_the_maximum():
    scores = np.array([0.2, 0.5, 0.1, 0.4])
    curve = expected_max(scores)
    assert curve[0] == pytest.approx(scores.mean())
    assert curve[-1] <= scores.max() and np.all(np.diff(curve) >= 0)
    draws = np.random.default_rng(0).choice(scores, (200_000, 2)).max(1).mean()
    assert curve[1] == pytest.approx(draws, abs=3e-3)


@pytest.mark.parametrize("gain,verdict", [(0.10, "fine-tuning is better (p = 0.00"), (0.0, "no difference detected")])
def test_fine_tuned_and_from_scratch_are_compared_at_the_headline_budget_inside_the_holm_family(gain, verdict):
    """Twelve trials at the epoch-2 rung, six of each; only three completed (two fine-tuned, one from scratch). The
    claim is made at the headline budget (epoch 2), with the pretrained parameter's own verdict, Holm over it and the
    learning rate, and finds a planted gain, or none."""
    rng = np.random.default_rng(7)
    tuned = np.array([True, False] * 6)
    at_two = 0.06 + gain * tuned + rng.normal(0, 0.01, 12)
    trials = _study(12).assign(
        pretrained=np.where(tuned, "synthetic.pt", None), epochs_planned=8,
        stop_reason=["completed"] * 3 + ["stopped_by_asha"] * 9, epochs_run=[8] * 3 + [2] * 9,
        last_val_top1=[0.7, 0.3, 0.6] + [np.nan] * 9)
    epochs = pd.DataFrame({"subset": MOTION, "trial_id": trials["trial_id"], "epoch": 2, "val_top1": at_two})
    found = analyse(trials, epochs, [MOTION], ["pretrained", "lr"], [2, 8])[MOTION]
    sentence = next(s for s in found.sentences if s.startswith("Fine-tuned vs from scratch"))
    assert sentence.startswith("Fine-tuned vs from scratch at epoch 2: fine-tuned trials score")
    assert f"; {verdict}" in sentence
    assert "(6 trials)" in sentence and "from scratch (6)" in sentence
    assert found.verdicts[(2, "pretrained")].holds == (gain > 0)  # the same verdict as the parameter table's


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


def test_a_data_budget_slope_from_three_trials_is_refused():
    design = Design(trials=3, reduction=0, clip_range=(1.0, 4.6), subsets={MOTION: WINDOW})
    found, _, _ = _analyse(design)
    from reports.findings import data_budget_sentence
    assert "too few for a slope with an interval" in data_budget_sentence(found[MOTION])


def test_a_deeper_budget_held_by_one_trial_is_said_as_one_trial_with_its_score():
    """The main job's 5 trials under ASHA often leave one trial at the last epoch: 'epoch 8 (1 trial, 55.9%)'."""
    texts = [_text(_analyse(Design(trials=5), seed=seed)[0]) for seed in range(10)]
    assert any("(1 trial, " in text for text in texts)
    assert not any("(1 trials" in text for text in texts)


def test_the_same_trials_give_the_same_p_values_whatever_order_they_ended_in(smoke):
    """The tables hold trials in the order they ended, which depends on timing; the tests draw their permutations
    from the rows in order, so the rows compared at a budget come in the trials' own order."""
    from reports import inference
    from reports.scores import at_budget
    from training.results import EPOCHS, read_frame
    root, trials = smoke
    epochs = read_frame(root, EPOCHS)
    shuffled = trials.sample(frac=1.0, random_state=3)
    assert not shuffled["trial_id"].equals(trials["trial_id"])
    for budget in (1, 3):
        a, b = at_budget(trials, epochs, budget, [1, 3]), at_budget(shuffled, epochs, budget, [1, 3])
        pd.testing.assert_frame_equal(a, b)
        for subset in a["subset"].unique():
            rows = a[a["subset"] == subset]
            if rows["lr"].nunique() > 1:
                assert inference.parameter_test(rows, "lr").p == inference.parameter_test(
                    b[b["subset"] == subset], "lr").p


def test_the_next_command_grows_this_study_naming_its_storage_unless_it_is_the_default(tmp_path, monkeypatch):
    from reports.analysis import resume_command
    monkeypatch.chdir(tmp_path)
    manifest = {"request": {"space": "/somewhere/search_spaces/sgd_lr.yaml", "num_samples": 12}}
    assert resume_command(manifest, tmp_path / "studies" / "lr", "--add-trials 4") == \
        "python -m study.run --space sgd_lr --name lr --resume --add-trials 4"
    assert resume_command(manifest, tmp_path / "elsewhere" / "lr", "--add-trials 4") == \
        f"python -m study.run --space sgd_lr --name lr --storage {tmp_path / 'elsewhere'} --resume --add-trials 4"
    remote = {**manifest, "tune_storage": "s3://bucket/studies/lr"}
    assert resume_command(remote, tmp_path / "cache" / "lr", "--add-trials 4") == \
        "python -m study.run --space sgd_lr --name lr --storage s3://bucket/studies --resume --add-trials 4"


def _subset_answer(subset: str, verdict: str, trials: int = 12, trials_needed: int | None = None):
    from reports.analysis import ParameterAnswer, SubsetAnswer
    lr = ParameterAnswer("lr", verdict, trials, 0.01, 0.01, 0.025, 0.1, None, 0.001, trials_needed, 0.9)
    return SubsetAnswer(subset, 5, False, trials, 1 / 30, True, 0.001, 8, 4, 0, 0.25, 10000, 0.005, (0.001, 0.01),
                        (lr,), None, None)


def _ran(trials: int, repeats: int = 0) -> pd.DataFrame:
    """``trials`` search trials of each subset and ``repeats`` seed repeats, the study's wall time 600 s over 60 epochs
    of the search (each search trial 5 of its 6 planned epochs, two subsets of six trials)."""
    start = pd.Timestamp("2026-01-01 00:00:00")
    rows = [{"subset": subset, "trial_id": f"{subset}{i}", "repeat_of": None, "epochs_run": 5, "epochs_planned": 6,
             "started_at": start + pd.Timedelta(seconds=100 * i), "updated_at": start + pd.Timedelta(seconds=100 * i + 100)}
            for subset in (MOTION, K392) for i in range(trials)]
    rows += [{**rows[0], "trial_id": f"repeat{k}", "repeat_of": rows[0]["trial_id"]} for k in range(repeats)]
    return pd.DataFrame(rows)


def test_once_the_verdicts_need_nothing_more_the_next_step_adds_seed_repeats_to_this_study_with_its_time(
        tmp_path, monkeypatch):
    """Every subset learns and every parameter was tested: the next command adds the 2 best configs' repeats with 3
    new seeds to this study (--resume --repeats 2 --seeds 3), timed at the study's own pace per epoch (600 s over 60
    epochs here) for 2 x 3 trials of 6 epochs per subset; a study started with repeats that have not run yet is
    resumed. With repeats done, nothing is asked for; a parameter that cannot be told yet asks for more search trials
    first; a study with no trial recorded yet is resumed."""
    from reports.analysis import NOT_TESTABLE, next_step
    monkeypatch.chdir(tmp_path)
    root, manifest = tmp_path / "studies" / "lr", {"request": {"space": "sgd_lr", "num_samples": 6}}
    answers = (_subset_answer(MOTION, "matters"), _subset_answer(K392, "not_detected"))
    step = next_step(answers, _ran(6), manifest, root)
    assert (step.action, step.repeats, step.seeds, step.added_trials) == ("repeat_seeds", 2, 3, 6)
    assert step.command == "python -m study.run --space sgd_lr --name lr --resume --repeats 2 --seeds 3"
    assert step.expected_s == pytest.approx(600 / 60 * 6 * 6 * 2)
    assert step.because == (MOTION, K392)
    one_each = (_subset_answer(MOTION, "matters", trials=1), _subset_answer(K392, "matters", trials=1))
    assert next_step(one_each, _ran(1), manifest, root).repeats == 1  # one config to repeat, not two
    assert next_step(answers, _ran(6, repeats=3), manifest, root).action == "done"
    started_with = {"request": {**manifest["request"], "repeats": 1, "seeds": 4}}  # not run yet: resuming runs them
    resume = next_step(answers, _ran(6), started_with, root)
    assert (resume.action, resume.repeats, resume.seeds, resume.added_trials) == ("repeat_seeds", 1, 4, 4)
    assert resume.command == "python -m study.run --space sgd_lr --name lr --resume"
    nothing_yet = next_step((), _ran(0), manifest, root)
    assert (nothing_yet.action, nothing_yet.command) == ("resume", "python -m study.run --space sgd_lr --name lr --resume")
    untold = (_subset_answer(MOTION, NOT_TESTABLE, trials_needed=9), answers[1])
    grow = next_step(untold, _ran(6), manifest, root)
    assert (grow.action, grow.added_trials) == ("add_trials", 3)
    assert grow.command.endswith("--resume --add-trials 3")


@pytest.mark.parametrize("n", [2, 5, 12, 40, 300])
def test_kept_shuffles_are_the_ones_the_seeded_generator_draws_for_any_scores(n):
    """The permutation tests index the scores with shuffles drawn once per size and seed (kept for small tests, the
    latest two for large ones): exactly what shuffling those scores with the seeded generator gives, ties included,
    so every p-value is what it was, whether the shuffles were kept or drawn again."""
    scores = np.random.default_rng(n).normal(size=n).round(1)
    for seed, permutations in ((0, 4000), (7, 1000), (0, 4000), (3, 1000), (7, 1000)):
        drawn = np.random.default_rng(seed).permuted(np.broadcast_to(scores, (permutations, n)), axis=1)
        np.testing.assert_array_equal(scores[shuffles(n, permutations, seed)], drawn)
        np.testing.assert_array_equal(shuffled(scores, permutations, seed), drawn)
