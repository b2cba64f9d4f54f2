"""The answer in words, rendered from ``summary.json``'s ``answer`` alone (reports/analysis.py computes it), so the
page, the workbook's Summary sheet and the console say the same thing with the same numbers: per subset at most
five lines (does it learn, what matters and by how much, what found nothing, what cannot be told yet, the working
learning rates), the line across the subsets, and the next step with its command, trial count and time."""

from __future__ import annotations

NAMES = {"lr": "learning rate", "batch_size": "batch size", "weight_decay": "weight decay", "warmup_epochs": "warm-up",
         "linear_scaling": "linear scaling of the lr", "fraction_per_class": "training fraction per class",
         "cap_per_class": "training clips per class (cap)", "plateau_patience": "plateau patience",
         "plateau_factor": "plateau factor", "pretrained": "pre-training", "freeze_epochs": "frozen epochs"}


def name(parameter: str) -> str:
    return NAMES.get(parameter, parameter.replace("_", " "))


def count(number: int, noun: str) -> str:
    """'1 trial', '3 trials'."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def points(value: float) -> str:
    return f"{100 * value:.1f} points"


def p_text(value: float | None) -> str:
    if value is None:
        return "p n/a"
    return f"p = {value:.3f}" if value >= 0.001 else "p < 0.001"


def duration(seconds: float) -> str:
    """'40 s', '3 min 10 s', '2 h 05 min'."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def budget_text(subset: dict) -> str:
    where = "the last epoch, completed trials" if subset["final"] else "an ASHA rung every trial reaches"
    return f"epoch {subset['budget']} ({where})"


def subset_lines(subset: dict) -> list[str]:
    """At most five lines: the verdict on learning, then what matters, what found nothing, what cannot be told yet,
    and the learning rates that learned."""
    head = f"{subset['subset']} at {budget_text(subset)}, {count(subset['trials'], 'trial')}: "
    if subset["trials"] == 0:
        return [head + "no trial has a score here yet."]
    best = f"best {pct(subset['best_score'])}" + (f", chance {pct(subset['chance'])}" if subset["chance"] else "")
    if subset["learns"] is None:
        lines = [head + f"whether it learns is not tested ({best})."]
    elif subset["learns"]:
        lines = [head + f"it learns ({best}; Holm {p_text(subset['learns_p_holm'])})."]
    else:
        return [head + f"no trial is shown above chance ({best}; Holm {p_text(subset['learns_p_holm'])}), so nothing "
                "can be attributed to a hyperparameter yet."]
    by_kind: dict[str, list[dict]] = {}
    for parameter in subset["parameters"]:
        by_kind.setdefault(parameter["verdict"], []).append(parameter)
    if "matters" in by_kind:
        lines.append("Matters: " + "; ".join(
            f"{name(p['parameter'])}, {points(p['effect'])} between its best and worst values (Holm {p_text(p['p_holm'])}"
            + (f"; likely overstated: the test finds a response this size only {100 * p['power']:.0f}% of the time"
               if p["power"] is not None and p["power"] < 0.8 else "") + ")" for p in by_kind["matters"]) + ".")
    if "not_detected" in by_kind:
        lines.append("No effect detected: " + "; ".join(
            f"{name(p['parameter'])} (Holm {p_text(p['p_holm'])}"
            + (f"; {points(p['detectable'])} would have been found with 80% probability" if p["detectable"] else "")
            + ")" for p in by_kind["not_detected"]) + ".")
    if "not_testable" in by_kind:
        lines.append("Cannot tell yet: " + "; ".join(untestable(p) for p in by_kind["not_testable"]) + ".")
    lines.append(working_range_line(subset))
    return lines


def untestable(parameter: dict) -> str:
    trials = count(parameter["trials"], "trial")
    if parameter["reach"] is None:
        return f"{name(parameter['parameter'])}: {trials} are too few for its test to run"
    if parameter["reach"] <= parameter["level"]:
        return (f"{name(parameter['parameter'])}: with {trials}, spread over its values as they are, the test would find "
                "even the largest difference less than 4 times in 5")
    return (f"{name(parameter['parameter'])}: with {trials} the test's smallest p is {parameter['reach']:.3f}, above the "
            f"corrected level {parameter['level']:.3f}")


def working_range_line(subset: dict) -> str:
    tally = (f"{subset['learned']} learned, {subset['at_chance']} at chance, {subset['diverged']} diverged "
             f"(loss NaN), each trial tested against chance with Holm")
    if not subset["final"] and subset["at_chance"]:
        tally += (f"; at chance at an ASHA rung (epoch {subset['budget']}) is not a verdict on a learning rate: a "
                  "trial stopped there may learn later")
    window = subset["working_lr"]
    if window is None:
        return f"Trials: {tally}."
    low, high = window
    span = f"lr {low:.2g}" if low == high else f"lr {low:.2g} to {high:.2g}"
    return f"Learning rates that learned: {span} ({tally})."


def across_line(across: dict) -> str | None:
    if across["why"] == "one subset only":
        return None
    if not across["compared"]:
        return f"Across the subsets: not compared at epoch {across['budget']}: {across['why']}."
    said = []
    for parameter, p in zip(across["tested"], across["p_holm"]):
        verb = "differs" if parameter in across["differs"] else "no difference detected"
        said.append(f"the effect of {name(parameter)}: {verb} (Holm {p_text(p)})")
    return f"Across the subsets at epoch {across['budget']}: " + "; ".join(said) + "."


def next_step_lines(step: dict) -> list[str]:
    """The next step, with the command on a line of its own so it can be copied whole."""
    because = ", ".join(step["because"])
    if step["action"] == "add_trials" and step["command"]:
        time = f", about {duration(step['expected_s'])} at this study's pace" if step["expected_s"] else ""
        return [f"Next: {step['added_trials']} more trials per subset in this study ({step['trials_per_subset']} in "
                f"all{time}), the fewest with which the test would find the response measured here with 80% "
                f"probability at its corrected level ({because}):", step["command"]]
    if step["action"] == "add_trials":
        return [f"Next: more trials ({because}), but from what this study measured no count up to 96 trials per subset "
                "is shown to find an effect: widen the search, or judge at a later budget (report_budget in the "
                "space), where the trials are further apart."]
    if step["action"] == "train_longer":
        return [f"Next: no trial is shown above chance at the headline budget on {because}: judge at a later budget "
                "(report_budget: an epoch of the study's budgets, in a copy of the space), where trials have had time "
                "to learn, or train longer (more epochs, a longer grace period)."]
    if step["action"] == "resume":
        return ["Next: no trial is recorded yet; this report fills in as the study's epochs end. A study that stopped "
                "continues with:", step["command"]]
    if step["action"] == "repeat_seeds":
        time = f", about {duration(step['expected_s'])} at this study's pace" if step["expected_s"] else ""
        why, which = ("the seed noise", "the best config") if step["repeats"] == 1 else (
            "the seed noise and whether the best config beats the runner-up", f"the {step['repeats']} best configs")
        return [f"Next: the verdicts need nothing more. To measure {why} from new seeds alone (without repeats the noise "
                f"floor is only the validation set's sampling noise), re-run {which} of each subset with "
                f"{step['seeds']} new seeds each, to their last epoch ({step['added_trials']} trials per subset"
                f"{time}):", step["command"]]
    return ["Next: nothing more is needed for these verdicts; the seed repeats measured the seed noise."]


def answer_lines(summary: dict) -> list[str]:
    """The whole answer, in order, as plain lines."""
    answer = summary["answer"]
    lines = [line for subset in answer["subsets"] for line in subset_lines(subset)]
    across = across_line(answer["across"])
    return lines + ([across] if across else []) + next_step_lines(answer["next_step"])
