"""The answer: computed once (reports/analysis.py), rendered from summary.json alone by renderers that import no
statistics, with its schema generated from its types; and the calibration of what it says a test can do."""

from __future__ import annotations

import ast
import html
import itertools
import json
import re
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from reports import inference, power, schema, sensitivity
from reports.answer import answer_lines, duration, subset_lines
from reports.html import write_page
from reports.spreadsheet import write_workbook
from reports.summary import SCHEMA_VERSION, facts_of, tables_of

ROOT = Path(__file__).resolve().parents[1]
RENDERERS = ("answer", "html", "spreadsheet", "describe", "table", "sensitivity")
STATISTICS = {"scipy", "reports.inference", "reports.analysis", "reports.findings", "reports.scores",
              "reports.comparisons", "reports.scaling"}


def parameter(verdict: str, **given) -> dict:
    values = {"parameter": "lr", "verdict": verdict, "trials": 5, "p": 0.61, "p_holm": 0.61, "level": 0.025,
              "effect": 0.0104, "detectable": None, "reach": 0.036, "trials_needed": 9, "power": None}
    return {**values, **given}


def subset(name: str, parameters: list[dict], **given) -> dict:
    values = {"subset": name, "budget": 2, "final": False, "trials": 5, "chance": 1 / 30, "learns": True,
              "learns_p_holm": 0.0001, "learned": 2, "at_chance": 3, "diverged": 0, "best_score": 0.107,
              "best_experiment_id": 10000, "best_lr": 0.0133, "working_lr": [0.0053, 0.0133], "parameters": parameters,
              "could_be_best_from": None, "exponent": None}
    return {**values, **given}


def hand_written() -> dict:
    """A summary.json written by hand, for a study that is nowhere on disk."""
    trial = {"subset": "kinetics-motion", "trial_id": "a1", "experiment_id": 10000, "folder": "0_30_10000_x",
             "config": {"lr": 0.0133}, "scores": {"2": 0.107, "8": 0.486}, "stop_reason": "completed", "epochs_run": 8,
             "epochs_planned": 8, "verdict": "learned", "repeat_of": None, "folder_link": "../experiments/0_30_10000_x",
             "curves_link": "../experiments/0_30_10000_x/matplotlib_graphs/accuracy.png",
             "curve": [0.05, 0.107, 0.2, 0.3, 0.35, 0.4, 0.45, 0.486], "train_clips_per_class": 24.0,
             "could_be_best": False,
             "record": {"experiment_id": 10000, "folder": "0_30_10000_x", "subset": "kinetics-motion", "index": 0,
                        "epochs_run": 8, "epochs_planned": 8, "optimizer": "sgd", "momentum": 0.9, "nesterov": True,
                        "lr": 0.0133, "batch_size": 8, "scheduler": "step", "milestones": [7], "gamma": 0.1,
                        "weight_decay": 0.0001, "seed": 0, "train_clips": 720, "data_source": "synthetic",
                        "model_variant": "cpu-sized", "last_train_top1": 0.5, "last_val_top1": 0.486,
                        "best_val_top1": 0.486, "best_epoch": 8, "last_val_top5": 0.8, "stop_reason": "completed",
                        "wall_time_s": 30.0, "optuna_number": 0, "sampled_by": "qmc", "retries": 0}}
    return {
        "schema_version": SCHEMA_VERSION,
        "study": {"name": "by-hand", "data": "synthetic", "space": "sgd_lr", "status": "finished", "seed": 0,
                  "trials": 1, "budgets": [2, 8], "headline_budget": {"kinetics-motion": {"epoch": 2, "why": "first"}}},
        "answer": {"subsets": [subset("kinetics-motion", [parameter("not_testable")]),
                               subset("kinetics-392", [parameter("matters", effect=0.175, p_holm=0.004,
                                                                 trials_needed=None, power=0.55)])],
                   "across": {"budget": 2, "compared": True, "why": None, "differs": [], "tested": ["lr"],
                              "p_holm": [0.5]},
                   "next_step": {"action": "add_trials", "trials_per_subset": 9, "added_trials": 4, "expected_s": 190.0,
                                 "command": "python -m study.run --space sgd_lr --name lr --resume --add-trials 4",
                                 "because": ["kinetics-motion: lr"], "repeats": None, "seeds": None}},
        "trials": [trial],
        "expected_best": [],
        "findings": ["A sentence of the details."],
        "noise_floors": {"kinetics-motion": {"sd": 0.02, "kind": "evaluation", "runs": 0, "configs": 0, "budget": 2,
                                             "text": "at least 2.0 points"}},
        "tables": {},
        "missing": [],
    }


def test_the_documented_schema_is_the_one_generated_from_the_types():
    assert json.loads(schema.DOCUMENT.read_text()) == schema.document()  # else: python -m reports.schema


def test_a_hand_written_summary_is_valid_and_renders_to_page_workbook_and_console_alike(tmp_path):
    summary = hand_written()
    jsonschema.validate(summary, json.loads(schema.DOCUMENT.read_text()))
    lines = answer_lines(summary)
    drawn, absent = sensitivity.figures(summary, tmp_path / "plots")
    assert [path.name for path, _ in drawn] == ["learning_curves.png"]  # one learning rate: nothing else can show
    assert any(line.startswith("No learning-rate plot") for line in absent)
    page = write_page(tmp_path / "index.html", summary, drawn, absent, facts_of(summary), tables_of(summary),
                      tmp_path / "book.xlsx")
    text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
    assert all(line in text for line in lines)
    assert text.index(lines[0]) < text.index("Trials") < text.index("What the data says")  # the answer leads
    assert 'href="../experiments/0_30_10000_x"' in page.read_text()
    book = load_workbook(write_workbook(tmp_path / "book.xlsx", summary, lines, facts_of(summary), []))
    column = [c.value for c in book["Summary"]["A"]]
    assert column[0] == "The answer" and column[1:1 + len(lines)] == lines
    experiment = [c.value for c in book["kinetics-motion"][2]]
    assert experiment[:2] == [10000, "0_30_10000_x"] and "best at epoch 2" in experiment[-1]
    assert book["kinetics-motion"].cell(row=2, column=2).hyperlink.target == "../experiments/0_30_10000_x"


def test_each_subset_leads_with_at_most_five_lines_and_the_next_step_gives_command_trials_and_time():
    summary = hand_written()
    for answer in summary["answer"]["subsets"]:
        assert len(subset_lines(answer)) <= 5
    lines = answer_lines(summary)
    assert "Cannot tell yet: learning rate: with 5 trials the test's smallest p is 0.036" in lines[1]
    assert ("Matters: learning rate, 17.5 points between its best and worst values (Holm p = 0.004; likely overstated: "
            "the test finds a response this size only 55% of the time)") in " ".join(lines)
    assert lines[-1] == "python -m study.run --space sgd_lr --name lr --resume --add-trials 4"
    assert "Next: 4 more trials per subset in this study (9 in all, about 3 min 10 s at this study's pace)" in lines[-2]


REPEAT_SEEDS_STEP = {"action": "repeat_seeds", "trials_per_subset": None, "added_trials": 6, "expected_s": 163.0,
                     "command": "python -m study.run --space sgd_lr --name lr --resume --repeats 2 --seeds 3",
                     "because": ["kinetics-motion", "kinetics-392"], "repeats": 2, "seeds": 3}


def with_next_step(step: dict) -> dict:
    summary = hand_written()
    summary["answer"]["next_step"] = step
    return summary


def test_when_the_verdicts_need_nothing_more_the_next_step_is_the_command_that_adds_seed_repeats(tmp_path):
    """The page and the console end on the command itself, with what it runs and how long it takes; the summary
    stays valid against the documented schema."""
    summary = with_next_step(REPEAT_SEEDS_STEP)
    jsonschema.validate(summary, json.loads(schema.DOCUMENT.read_text()))
    lines = answer_lines(summary)
    assert lines[-1] == REPEAT_SEEDS_STEP["command"]
    assert lines[-2].startswith("Next: the verdicts need nothing more. To measure the seed noise and whether the best "
                                "config beats the runner-up from new seeds alone")
    assert lines[-2].endswith("re-run the 2 best configs of each subset with 3 new seeds each, to their last epoch "
                              "(6 trials per subset, about 2 min 43 s at this study's pace):")
    one = answer_lines(with_next_step({**REPEAT_SEEDS_STEP, "repeats": 1, "added_trials": 3, "expected_s": None}))
    assert "re-run the best config of each subset with 3 new seeds each, to their last epoch (3 trials per subset):" \
        in one[-2] and "runner-up" not in one[-2]
    page = write_page(tmp_path / "index.html", summary, [], [], facts_of(summary), tables_of(summary),
                      tmp_path / "book.xlsx").read_text()
    assert f"<pre>{REPEAT_SEEDS_STEP['command']}</pre>" in page  # on a line of its own, to be copied whole
    done = answer_lines(with_next_step({**REPEAT_SEEDS_STEP, "action": "done", "command": None}))
    assert done[-1] == "Next: nothing more is needed for these verdicts; the seed repeats measured the seed noise."


def test_renderers_import_no_statistics():
    for module in RENDERERS:
        tree = ast.parse((ROOT / "reports" / f"{module}.py").read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not {m for m in imported if m.split(".")[0] in STATISTICS or m in STATISTICS}, module


def test_the_stated_floor_is_the_smallest_p_the_test_run_gives_over_every_outcome():
    for trials in (5, 6):
        lr = pd.Series(np.geomspace(4e-4, 0.1, trials))
        smallest = min(inference.parameter_test(pd.DataFrame({"lr": lr, "score": list(order)}), "lr").p
                       for order in itertools.permutations(range(trials)))
        assert inference.reachable_p(pd.DataFrame({"lr": lr}), "lr") == smallest


def test_the_trials_asked_for_find_the_measured_response_four_times_in_five_and_one_fewer_do_not():
    lr = np.geomspace(4e-4, 0.1, 5)
    measured = pd.DataFrame({"lr": lr, "score": [0.05, 0.30, 0.45, 0.10, 0.03]})  # a working window
    needed = power.trials_needed("lr", measured, 0.03, 0.025)
    assert needed is not None and 5 < needed < 20
    fresh = [power.power_at(measured, "lr", needed, 0.03, 0.025, draws=200, seed=s) for s in (101, 202)]
    assert min(fresh) >= 0.7  # 80% aimed for, read on 60 draws; new draws stay within their noise of it
    assert power.power_at(measured, "lr", needed - 1, 0.03, 0.025, draws=200, seed=303) < 0.9


def _numbers_in(data) -> list[float]:
    if isinstance(data, dict):
        return [n for value in data.values() for n in _numbers_in(value)]
    if isinstance(data, list | tuple):
        return [n for value in data for n in _numbers_in(value)]
    return [float(data)] if isinstance(data, int | float) and not isinstance(data, bool) else []


@pytest.mark.parametrize("step", [None, REPEAT_SEEDS_STEP])
def test_every_number_in_the_answer_is_one_of_summary_json(step):
    """Each number the answer's lines say is a number of ``answer`` as written: a fraction as a percentage or points,
    a p-value or level to three decimals, a power in whole percent, a learning rate to two significant digits, a
    count, or a duration; whichever the next step is."""
    summary = with_next_step(step) if step else hand_written()
    said = set()
    for value in _numbers_in(summary["answer"]):
        said |= {f"{100 * value:.1f}", f"{100 * value:.0f}", f"{value:.3f}", f"{value:.2g}", f"{value:g}"}
        said |= set(re.findall(r"\d+", duration(value))) if value > 0 else set()
    said |= {"80", "5", "0.001"}  # the power the answer asks for, "at most five lines", "p < 0.001"
    for line in answer_lines(summary):
        for number in re.findall(r"(?<![\w-])\d+(?:\.\d+)?(?![\w])", line.split("python -m")[0]):
            assert number in said, (number, line)
