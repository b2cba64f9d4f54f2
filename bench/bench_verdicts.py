"""How often each sentence of the report is wrong, measured on studies drawn from a known truth.

    python -m bench.bench_verdicts [--draws 200] [--workers 2] [--quick]

Each row simulates ``--draws`` studies (bench/simulated_study.py: a chance floor, a window of learning rates with
edges that are not a bell, 8 points of seed noise that grows as a trial learns, ASHA's asynchronous selection with
grace 2 and reduction factor 3 over 8 epochs, both subsets drawing the same configs as seeded samplers do), runs the
report's own analysis on them (reports.findings.analyse, the code the page is written from) and counts:

- false positives under a null: the share of studies whose page makes at least one false claim of that kind
  (family-wise, over every subset and budget), against the nominal 5%;
- power: the share of studies that find a planted effect, against 80%;
- coverage: the share of intervals (or sets) that hold the true value, against their nominal level.

A rate is "ok" when it is within two standard errors of its target on the right side. Writes the rates with the
machine to bench/results/bench_verdicts.json, from which ``python -m bench.report`` renders docs/report.md's table;
tests/test_verdicts.py runs a smaller draw of the same scenarios.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from bench import results as bench_results
from bench.simulated_study import Design, Truth, learning_curve, simulate
from reports import inference
from reports.analysis import MATTERS, NOT_TESTABLE, parameter_answers
from reports.findings import analyse, compare_subsets
from reports.scaling import batch_exponent

MOTION, K392 = "kinetics-motion", "kinetics-392"
CHANCE_ONLY = Truth(top=0.0)  # every config at its subset's chance
NO_LR_EFFECT = Truth(top=0.30, window=None, diverge_above=None)
WINDOW = Truth()  # lr decides between chance and 60%
BOTH = {MOTION: WINDOW, K392: replace(WINDOW, classes=32, val_clips=190)}


@dataclass(frozen=True)
class Check:
    """One row of the table: a rate, its target and direction. ``count``: (trials, epochs, truth, found, design) ->
    (successes, cases) in one simulated study."""
    verdict: str
    count: Callable
    target: float
    kind: str  # "false positives" (at most the target), "power" or "coverage" (at least)


@dataclass(frozen=True)
class Scenario:
    """A truth and a design, simulated once per draw; every check of it is counted on the same studies."""
    name: str
    design: Design
    checks: tuple[Check, ...]


def _found(trials, epochs, design):
    return analyse(trials, epochs, list(design.subsets), design.parameters, design.levels)


def any_learning_claim(trials, epochs, truth, found, design):
    return int(any(v.holds for f in found.values() for v in f.learning.values())), 1


def learns_at_headline(trials, epochs, truth, found, design):
    return int(all(f.learns() for f in found.values())), 1


def any_parameter_claim(parameters):
    def count(trials, epochs, truth, found, design):
        claims = [v.holds for f in found.values() for (b, p), v in f.verdicts.items() if p in parameters]
        return int(any(claims)), 1
    return count


def lr_matters_at_headline(trials, epochs, truth, found, design):
    return int(all(f.verdicts.get((f.budget, "lr")) is not None and f.verdicts[(f.budget, "lr")].holds
                   for f in found.values())), 1


def false_learned_trial(trials, epochs, truth, found, design):
    """A page calls a trial 'learned' whose true expected score at the headline budget is at chance (within 0.1
    point), or one that diverged."""
    wrong = 0
    for subset, f in found.items():
        chance = design.subsets[subset].chance
        for _, row in f.words.iterrows():
            at_chance = truth[row["trial_id"]].get(f.budget, chance) - chance < 0.001
            wrong += row["word"] == "learned" and at_chance
    return int(wrong > 0), 1


def level_interval_coverage(trials, epochs, truth, found, design):
    """Each value's (bin's) 95% interval against the mean true expected score of the trials in it."""
    held = cases = 0
    for f in found.values():
        test = f.tests.get(f.budget, {}).get("lr")
        if test is None:
            continue
        expected = np.array([truth[t][f.budget] for t in f.scored["trial_id"]])
        for g, level in enumerate(test.levels):
            if math.isnan(level.low):
                continue
            target = expected[test.groups.codes == g].mean()
            held += level.low <= target <= level.high
            cases += 1
    return held, cases


def best_set_coverage(trials, epochs, truth, found, design):
    """The 95% set of configs that could be the best (Gupta, the seed noise measured by the repeats at the headline
    budget) holds the config truly best there."""
    held = cases = 0
    for f in found.values():
        if f.noise.source != "seeds" or f.noise.dof < 1:
            continue
        done = f.scored[~f.scored["diverged"]]
        mask = inference.best_set(done["score"].to_numpy(float), f.noise.sd, f.noise.dof)
        expected = np.array([truth[t][f.budget] for t in done["trial_id"]])
        held += bool(mask[np.flatnonzero(expected == expected.max())].any())
        cases += 1
    return held, cases


def detectable_difference_power(trials, epochs, truth, found, design):
    """The page says, of an optimizer with no effect, that a difference of D points between its values would have
    been found with 80% probability. The same study drawn again (same seed) with Adam D points above SGD at the
    headline budget: is it found?"""
    hits = cases = 0
    for subset, f in found.items():  # the claim is each subset's own: its study drawn again with its difference
        claimed = f.detectable.get((f.budget, "optimizer"))
        if claimed is None:
            continue
        cases += 1
        share = learning_curve(design.epochs)[f.budget - 1]  # the planted gain is reached at the last epoch
        planted = replace(design, subsets={**design.subsets,
                                           subset: replace(design.subsets[subset], adam_gain=claimed / share)})
        again, epochs_again, _ = simulate(planted, int(trials.attrs.get("seed", 0)))
        hits += _found(again, epochs_again, planted)[subset].verdicts[(f.budget, "optimizer")].holds
    return hits, cases


def trials_asked_for_find_it(trials, epochs, truth, found, design):
    """Where the page cannot test the learning rate yet, it asks for N trials per subset (reports.analysis: a power
    analysis of the test that is run, on the response this study measured). A new study of N trials, drawn from the
    same truth: is lr found on that subset?"""
    hits = cases = 0
    for subset, f in found.items():
        asked = [p for p in parameter_answers(f, design.parameters) if p.parameter == "lr" and p.verdict == NOT_TESTABLE]
        if not asked or asked[0].trials_needed is None:
            continue
        bigger = replace(design, trials=asked[0].trials_needed)
        again, epochs_again, _ = simulate(bigger, 10_000 + int(trials.attrs.get("seed", 0)))
        verdict = _found(again, epochs_again, bigger)[subset].verdicts.get((f.budget, "lr"))
        hits += verdict is not None and verdict.holds
        cases += 1
    return hits, cases


def flagged_overstated_is_overstated(trials, epochs, truth, found, design):
    """Where lr is found to matter but the page flags the effect as likely overstated (its test's power at the
    measured response under 80%): is the reported best-minus-worst difference above the true one (the truth's
    expected scores over the same bins)?"""
    hits = cases = 0
    for f in found.values():
        for answer in parameter_answers(f, design.parameters):
            if answer.parameter != "lr" or answer.verdict != MATTERS or not answer.power or answer.power >= 0.8:
                continue
            test = f.tests[f.budget]["lr"]
            expected = np.array([truth[t][f.budget] for t in f.scored["trial_id"]])
            means = [expected[test.groups.codes == g].mean() for g in range(test.groups.count)
                     if (test.groups.codes == g).any()]
            hits += answer.effect > max(means) - min(means)
            cases += 1
    return hits, cases


def uninformative_set_said(trials, epochs, truth, found, design):
    """No config better than another (lr inert), seed repeats measured: the page says the could-be-best set rules
    out almost nothing whenever it holds 80% of the trials or more, and is that set as wide as the truth is flat?"""
    hits = cases = 0
    for f in found.values():
        said = any("rules out almost nothing" in s for s in f.sentences)
        if f.noise.source != "seeds" or f.noise.dof < 1:
            continue
        hits += said
        cases += 1
    return hits, cases


def any_interaction_claim(trials, epochs, truth, found, design):
    compared = compare_subsets(found, design.parameters)
    return (int(any(c.holds for c in compared)), 1) if not isinstance(compared, str) else (0, 0)


def lr_interaction_found(trials, epochs, truth, found, design):
    compared = compare_subsets(found, design.parameters)
    if isinstance(compared, str):
        return 0, 0
    return int(any(c.holds and c.parameter == "lr" for c in compared)), 1


def exponent_coverage(alpha: float):
    def count(trials, epochs, truth, found, design):
        f = found[MOTION]
        fitted = batch_exponent(f.scored, f.chance)
        return (int(fitted.low <= alpha <= fitted.high), 1) if not isinstance(fitted, str) else (0, 1)
    return count


def slope_coverage(slope: float):
    def count(trials, epochs, truth, found, design):
        from reports.findings import data_budget_slope
        rows = found[MOTION].scored
        _, low, high = data_budget_slope(rows[~rows["diverged"]])
        return int(low <= slope <= high), 1
    return count


def scenarios(quick: bool = False) -> list[Scenario]:
    """The table's scenarios. ``quick``: the ones the fast test runs, at one trial count each."""
    null_counts = (10,) if quick else (5, 10, 30, 60)
    power_counts = (20,) if quick else (5, 8, 12, 20, 40, 80)
    out = []
    for n in null_counts:
        out.append(Scenario("nothing learns", Design(trials=n, subsets={MOTION: CHANCE_ONLY,
                                                                        K392: replace(CHANCE_ONLY, classes=32)}), (
            Check('"S learns"', any_learning_claim, 0.05, "false positives"),
            Check('"trial T learned"', false_learned_trial, 0.05, "false positives"))))
        out.append(Scenario("no parameter matters (seed noise 8 pts), the same on both subsets",
                            Design(trials=n, optimizers=("sgd", "adam"), subsets={MOTION: NO_LR_EFFECT,
                                                                                   K392: NO_LR_EFFECT}), (
            Check('"P matters" (lr, optimizer, wd)', any_parameter_claim({"lr", "optimizer", "weight_decay"}), 0.05,
                  "false positives"),
            Check('"P\'s effect differs between the subsets"', any_interaction_claim, 0.05, "false positives"))))
    for n in power_counts:
        window = Design(trials=n, optimizers=("sgd", "adam"), subsets=BOTH)
        out.append(Scenario("lr window (chance to 60%), optimizer and wd inert, the same on both subsets", window, (
            Check('"S learns", on both subsets', learns_at_headline, 0.80, "power"),
            Check('"lr matters", on both subsets', lr_matters_at_headline, 0.80, "power"),
            Check('"optimizer (or wd) matters"', any_parameter_claim({"optimizer", "weight_decay"}), 0.05,
                  "false positives"),
            Check('"trial T learned" of a trial at chance', false_learned_trial, 0.05, "false positives"),
            Check('"P\'s effect differs between the subsets"', any_interaction_claim, 0.05, "false positives"),
            Check("each lr bin's mean in its 95% t interval", level_interval_coverage, 0.95, "coverage"))))
        if quick and n < 40:
            n = 40  # the interaction needs more trials than the main effect for the same power
        out.append(Scenario("lr window, 60% on one subset and 25% on the other",
                            replace(window, trials=n, subsets={MOTION: WINDOW, K392: replace(
                                WINDOW, classes=32, val_clips=190, top=0.25)}), (
            Check('"lr\'s effect differs between the subsets"', lr_interaction_found, 0.80, "power"),)))
    if quick:
        return out
    out.append(Scenario("lr window, the 2 best configs x 2 repeat seeds", Design(trials=20, subsets=BOTH, repeats=2,
                                                                                  seeds=2), (
        Check('"could be the best" (95% set) holds the best', best_set_coverage, 0.95, "coverage"),)))
    out.append(Scenario("lr window, 5 trials (too few to test): a study of the size the page asks for", Design(
        trials=5, subsets=BOTH), (
        Check('"N trials per subset would tell": lr found with N', trials_asked_for_find_it, 0.80, "power"),)))
    out.append(Scenario("lr window of 20 points (chance to 23%), 12 trials: effects found with little power",
                        Design(trials=12, subsets={MOTION: replace(WINDOW, top=0.23), K392: replace(
                            WINDOW, classes=32, val_clips=190, top=0.23)}), (
        Check('"likely overstated": the effect is above the true one', flagged_overstated_is_overstated, 0.50,
              "coverage"),)))
    out.append(Scenario("lr inert, the 2 best configs x 2 repeat seeds", Design(
        trials=20, subsets={MOTION: NO_LR_EFFECT, K392: replace(NO_LR_EFFECT, classes=32)}, repeats=2, seeds=2), (
        Check('"that set rules out almost nothing", said', uninformative_set_said, 0.80, "power"),)))
    flat = Design(trials=40, reduction=0, optimizers=("sgd", "adam"),
                  subsets={MOTION: NO_LR_EFFECT, K392: replace(NO_LR_EFFECT, classes=32)})
    out.append(Scenario("Adam as many points above SGD as the page said it could detect, lr without effect", flat, (
        Check('"no effect larger than D points": D found', detectable_difference_power, 0.80, "power"),)))
    for alpha in (0.5, 1.0):
        out.append(Scenario("a window moving with the batch size, no ASHA", Design(
            trials=100, reduction=0, lr_range=(-5.0, 0.0), batches=(16, 32, 64, 128, 256),
            subsets={MOTION: replace(WINDOW, alpha=alpha, window=(-2.2, -1.2), diverge_above=-0.3)}), (
            Check(f"α of lr* ∝ batch^α: {alpha} in its 90% interval", exponent_coverage(alpha), 0.90, "coverage"),)))
    out.append(Scenario("+6 pts per doubling of the training clips, no ASHA", Design(
        trials=24, reduction=0, lr_range=(-2.2, -1.6), clip_range=(1.0, 4.6),
        subsets={MOTION: replace(WINDOW, data_slope=0.06, diverge_above=None)}), (
        Check("data-budget slope in its 90% interval", slope_coverage(0.06), 0.90, "coverage"),)))
    return out


def run_scenario(scenario: Scenario, draws: int, first_seed: int = 0) -> list[tuple[int, int]]:
    """(successes, cases) of each check over ``draws`` simulated studies."""
    totals = [[0, 0] for _ in scenario.checks]
    for seed in range(first_seed, first_seed + draws):
        trials, epochs, truth = simulate(scenario.design, seed)
        trials.attrs["seed"] = seed
        found = _found(trials, epochs, scenario.design)
        for total, check in zip(totals, scenario.checks):
            hits, cases = check.count(trials, epochs, truth, found, scenario.design)
            total[0] += hits
            total[1] += cases
    return [tuple(t) for t in totals]


def verdict(check: Check, hits: int, cases: int) -> tuple[float, float, bool]:
    rate = hits / cases if cases else math.nan
    se = math.sqrt(check.target * (1 - check.target) / cases) if cases else math.nan
    ok = rate <= check.target + 2 * se if check.kind == "false positives" else rate >= check.target - 2 * se
    return rate, se, bool(ok)


def _run(args):
    """In a worker: the scenario by its place in the list (checks hold closures, which do not pickle)."""
    quick, index, draws, first_seed = args
    return index, run_scenario(scenarios(quick)[index], draws, first_seed)


def run_scenarios(quick: bool, draws: int, workers: int, first_seed: int = 0,
                  progress: Callable[[str], None] = lambda line: None) -> list[list[tuple[int, int]]]:
    """Every scenario's (successes, cases) per check, the scenarios shared out over ``workers`` processes;
    ``progress`` hears of each scenario as it ends."""
    chosen = scenarios(quick)
    done: dict[int, list[tuple[int, int]]] = {}
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for index, totals in pool.imap_unordered(_run, [(quick, i, draws, first_seed) for i in range(len(chosen))]):
            done[index] = totals
            progress(f"  {len(done)}/{len(chosen)} scenarios drawn: {chosen[index].name}, "
                     f"{chosen[index].design.trials} trials")
    return [done[index] for index in range(len(chosen))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=200, help="simulated studies per scenario (default 200)")
    parser.add_argument("--workers", type=int, default=2, help="processes sharing the scenarios out (default 2)")
    parser.add_argument("--quick", action="store_true", help="only the rows the fast test runs (writes nothing)")
    bench_results.add_out_argument(parser, "bench_verdicts")
    args = parser.parse_args()
    chosen = scenarios(args.quick)
    print(f"{multiprocessing.cpu_count()} cores; {args.draws} simulated studies per scenario; permutations per test: "
          f"{inference.PERMUTATIONS}", flush=True)
    start = time.perf_counter()
    totals = run_scenarios(args.quick, args.draws, args.workers, progress=lambda line: print(line, flush=True))
    rows = []
    print(f"{'verdict':58} {'kind':16} {'trials':>6} {'rate':>7} {'target':>7}  ok  scenario")
    for scenario, counts in zip(chosen, totals):
        for check, (hits, cases) in zip(scenario.checks, counts):
            rate, se, ok = verdict(check, hits, cases)
            rows.append({"verdict": check.verdict, "kind": check.kind, "truth": scenario.name,
                         "trials": scenario.design.trials, "rate": rate if cases else None, "target": check.target,
                         "se": se if cases else None, "cases": cases, "ok": ok})
            print(f"{check.verdict:58} {check.kind:16} {scenario.design.trials:6d} {100 * rate:6.1f}% "
                  f"{100 * check.target:6.0f}%  {'yes' if ok else 'NO '} {scenario.name} ({cases} cases, se "
                  f"{100 * se:.1f})")
    print(f"{time.perf_counter() - start:.0f} s")
    if not args.quick:
        figures = {"draws": args.draws, "permutations": inference.PERMUTATIONS, "rows": rows}
        command = f"python -m bench.bench_verdicts --draws {args.draws}"
        print(f"written to {bench_results.write('bench_verdicts', figures, command, args.out)}")


if __name__ == "__main__":
    main()
