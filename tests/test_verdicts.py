"""Each verdict's error rate on simulated studies whose truth is known: the fast draw of bench/bench_verdicts.py
(60 studies a scenario, at 10 trials per subset under the nulls and 20 with a learning-rate window). A rate passes
within two standard errors of its target, as in the benchmark; the draws are seeded, so the result is the same on
every machine."""

from __future__ import annotations

import pytest

from bench.bench_verdicts import run_scenarios, scenarios, verdict

DRAWS = 60
SCENARIOS = scenarios(quick=True)


@pytest.fixture(scope="module")
def results():
    """Every scenario drawn once, two processes sharing them out (the draws are single-threaded)."""
    return run_scenarios(quick=True, draws=DRAWS, workers=2, first_seed=1000)


@pytest.mark.parametrize("index", range(len(SCENARIOS)),
                         ids=[f"{s.name} ({s.design.trials} trials)" for s in SCENARIOS])
def test_each_verdict_keeps_its_error_rate_on_simulated_studies(results, index):
    failing = []
    for check, (hits, cases) in zip(SCENARIOS[index].checks, results[index]):
        rate, se, ok = verdict(check, hits, cases)
        assert cases >= DRAWS, check.verdict
        if not ok:
            failing.append(f"{check.verdict}: {100 * rate:.1f}% ({hits}/{cases}), target {check.kind} "
                           f"{100 * check.target:.0f}%")
    assert not failing, failing
