"""Sensitivity plots, drawn from summary.json alone (its ``answer``, ``trials``, ``expected_best`` and the
``parameters`` table), so a plot can never show another number than the page, and each drawn only where the study
can show something (``figures`` says why the others are absent).

No figure mixes a score from an early ASHA rung with a final one as one quantity: a series is one budget (the val
top-1 at that epoch of every trial that reached it, or the last epoch of the completed trials), labelled as such.
Diverged trials are drawn at the bottom, marked. Every function returns the points it drew, so what a figure shows
can be checked against the summary it came from.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

from common.plotting import save_figure
from reports.answer import count

MARKERS = {"sgd": "o", "adam": "s", "adamw": "^"}
SCHEDULER_ORDER = ("step", "cosine", "plateau", "none")
PAPER_LR, PAPER_BATCH = 0.1, 256
LEGEND_MAX = 12  # trials a panel names in its legend; past that the colour alone says the learning rate (a colour bar)


class Plot(NamedTuple):
    path: Path
    points: pd.DataFrame  # subset, series, x, y (and what else identifies a point): what the figure shows


def _panels(subsets, title: str, sharey: bool = True):
    fig, axes = plt.subplots(1, len(subsets), figsize=(5.5 * len(subsets), 4.4), sharey=sharey, squeeze=False)
    fig.suptitle(title)
    return fig, axes[0]


def _budget_label(budget: int, final: bool) -> str:
    return f"epoch {budget} (completed trials)" if final else f"epoch {budget} (ASHA rung, every trial there)"


def _answers(summary: dict) -> dict[str, dict]:
    return {a["subset"]: a for a in summary["answer"]["subsets"]}


def _search(summary: dict, subset: str) -> list[dict]:
    return [t for t in summary["trials"] if t["subset"] == subset and t["repeat_of"] is None]


def _final(summary: dict) -> int:
    return max(summary["study"]["budgets"], default=0)


def varied(summary: dict) -> set[str]:
    """The searched parameters that take two values or more among the trials."""
    values: dict[str, set] = {}
    for trial in summary["trials"]:
        for key, value in trial["config"].items():
            values.setdefault(key, set()).add(value)
    return {key for key, seen in values.items() if len(seen) > 1}


def lr_sensitivity(summary: dict, out: Path) -> Plot:
    """Val top-1 vs learning rate: a colour per budget, a marker per optimizer (when searched), diverged trials at the
    bottom, and the scores that could be the best config's as a band where the seed noise was measured."""
    answers = _answers(summary)
    subsets = list(answers)
    budgets = summary["study"]["budgets"]
    fig, axes = _panels(subsets, "Validation top-1 vs learning rate, at matched budgets")
    colours = plt.cm.viridis(np.linspace(0.15, 0.85, max(len(budgets), 1)))
    points = []
    for ax, subset in zip(axes, subsets):
        trials = _search(summary, subset)
        for colour, budget in zip(colours, budgets):
            series: dict[str, list[tuple[float, float]]] = {}
            for t in trials:
                if str(budget) in t["scores"] and t["stop_reason"] != "diverged":
                    series.setdefault(t["config"].get("optimizer") or "", []).append((t["config"]["lr"],
                                                                                       t["scores"][str(budget)]))
            for optimizer, xy in sorted(series.items()):
                x, y = zip(*xy)
                label = _budget_label(budget, budget >= _final(summary)) + (f", {optimizer}" if optimizer else "")
                ax.scatter(x, 100 * np.array(y), color=colour, marker=MARKERS.get(optimizer, "o"), s=36, label=label)
                points += [(subset, f"epoch {budget}", a, b, optimizer) for a, b in xy]
        bad = [t for t in trials if t["stop_reason"] == "diverged"]
        if bad:
            ax.scatter([t["config"]["lr"] for t in bad], np.zeros(len(bad)), marker="x", color="crimson", s=50,
                       label="diverged (loss NaN)")
            points += [(subset, "diverged", t["config"]["lr"], 0.0, t["config"].get("optimizer") or "") for t in bad]
        answer = answers[subset]
        if answer["could_be_best_from"] is not None and answer["best_score"] is not None:
            ax.axhspan(100 * answer["could_be_best_from"], 100 * answer["best_score"], color="grey", alpha=0.15,
                       label=f"could be the best at epoch {answer['budget']} (95% set, measured seed noise)")
        if answer["chance"]:
            ax.axhline(100 * answer["chance"], color="grey", linestyle="--", linewidth=1, label="chance")
        ax.set(xscale="log", xlabel="learning rate", ylabel="val top-1 (%)", title=subset)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)  # below: never over a point
    save_figure(fig, out / "lr_sensitivity.png")
    return Plot(out / "lr_sensitivity.png", pd.DataFrame(points, columns=["subset", "series", "x", "y", "optimizer"]))


def importance_by_budget(summary: dict, out: Path) -> Plot:
    """Each parameter's share of the score's variance (omega squared) at each budget, from the ``parameters`` table:
    filled where it matters at the headline budget (Holm over parameters and subsets), hollow elsewhere: the deeper
    budgets hold only ASHA's survivors and are descriptive."""
    answers = _answers(summary)
    rows = pd.DataFrame(summary["tables"]["parameters"]["rows"])
    fig, axes = _panels(list(answers), "Share of variance each parameter explains, by budget (filled: it matters at the "
                                       "headline budget, Holm-corrected)")
    points = []
    for ax, (subset, answer) in zip(axes, answers.items()):
        mine = rows[rows["subset"] == subset] if len(rows) else rows
        for parameter, group in mine.groupby("parameter", sort=True) if len(mine) else []:
            group = group.sort_values("budget_epochs")
            matters = (group["verdict"] == "matters").tolist()
            line, = ax.plot(group["budget_epochs"], group["omega_squared"], label=parameter)
            ax.scatter(group["budget_epochs"], group["omega_squared"], s=50, color=line.get_color(), zorder=3,
                       facecolors=[line.get_color() if m else "white" for m in matters])
            points += [(subset, parameter, b, v, m) for b, v, m in zip(group["budget_epochs"], group["omega_squared"],
                                                                      matters)]
        ax.axvline(answer["budget"], color="grey", linestyle=":", linewidth=1,
                   label=f"headline budget (epoch {answer['budget']})")
        ax.set(xlabel="budget (epochs)", ylabel="share of variance explained (omega squared)", title=subset, ylim=(0, 1))
        ax.set_xticks(summary["study"]["budgets"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, out / "importance.png")
    return Plot(out / "importance.png", pd.DataFrame(points, columns=["subset", "series", "x", "y", "matters"]))


def _headline_scores(summary: dict, subset: str) -> list[tuple[dict, float]]:
    budget = str(_answers(summary)[subset]["budget"])
    return [(t, t["scores"][budget]) for t in _search(summary, subset) if budget in t["scores"]]


def _headline_title(answer: dict) -> str:
    return f"{answer['subset']} ({_budget_label(answer['budget'], answer['final'])})"


def lr_batch(summary: dict, out: Path) -> Plot:
    """Learning rate x batch size coloured by the score at the headline budget, with the linear scaling line through
    the paper's 0.1 at 256 and, where estimated, the fitted lr* = c * batch^alpha."""
    answers = _answers(summary)
    fig, axes = _panels(list(answers), "Learning rate x batch size (colour: val top-1 %, one scale for every panel)")
    fig.subplots_adjust(top=0.82)
    points, scatter = [], None
    tops = [a["best_score"] for a in answers.values() if a["best_score"] is not None]
    top = max(1.0, 100 * max(tops)) if tops else 1.0
    for ax, (subset, answer) in zip(axes, answers.items()):
        scored = _headline_scores(summary, subset)
        batch = [t["config"]["batch_size"] for t, _ in scored]
        lr = [t["config"]["lr"] for t, _ in scored]
        scatter = ax.scatter(batch, lr, c=[100 * s for _, s in scored], cmap="viridis", vmin=0, vmax=top, s=50,
                             edgecolors="k")
        points += [(subset, "trials", b, r) for b, r in zip(batch, lr)]
        batches = np.array([8, 512])
        ax.plot(batches, PAPER_LR * batches / PAPER_BATCH, "r--", linewidth=1, label="linear scaling (0.1 at 256)")
        fit = answer["exponent"]
        if fit is not None:
            fitted = fit["lr_at_paper_batch"] * (batches / PAPER_BATCH) ** fit["alpha"]
            ax.plot(batches, fitted, "k-", linewidth=1.2,
                    label=f"fitted lr* ~ batch^{fit['alpha']:.2f} [{fit['low']:.2f}, {fit['high']:.2f}]")
            points += [(subset, "fitted", b, r) for b, r in zip(batches, fitted)]
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="learning rate")
        ax.set_title(_headline_title(answer), fontsize=9)
        ax.set_xticks([16, 32, 64, 128, 256], labels=["16", "32", "64", "128", "256"])
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    if scatter is not None:
        fig.colorbar(scatter, ax=list(axes), label="val top-1 (%)")
    save_figure(fig, out / "lr_batch.png")
    return Plot(out / "lr_batch.png", pd.DataFrame(points, columns=["subset", "series", "x", "y"]))


def scheduler_comparison(summary: dict, out: Path) -> Plot:
    """The scores at each subset's headline budget, per learning-rate scheduler (box and every trial)."""
    answers = _answers(summary)
    fig, axes = _panels(list(answers), "Validation top-1 per learning-rate scheduler")
    points = []
    for ax, (subset, answer) in zip(axes, answers.items()):
        scored = _headline_scores(summary, subset)
        kinds = [k for k in SCHEDULER_ORDER if any(t["config"].get("scheduler") == k for t, _ in scored)]
        data = [[100 * s for t, s in scored if t["config"].get("scheduler") == k] for k in kinds]
        if kinds:
            ax.boxplot(data, tick_labels=kinds)
            for i, (kind, values) in enumerate(zip(kinds, data), start=1):
                ax.scatter(np.full(len(values), i) + np.linspace(-0.08, 0.08, len(values)), values, s=14,
                           color="tab:blue", alpha=0.7)
                points += [(subset, kind, i, v / 100) for v in values]
        ax.set(xlabel="scheduler", ylabel="val top-1 (%)")
        ax.set_title(_headline_title(answer), fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    save_figure(fig, out / "scheduler_comparison.png")
    return Plot(out / "scheduler_comparison.png", pd.DataFrame(points, columns=["subset", "series", "x", "y"]))


def learning_curves(summary: dict, out: Path) -> Plot:
    """val top-1 vs epoch of every trial, coloured by its learning rate (the legend names each trial and its lr, or a
    colour bar does past LEGEND_MAX trials), with an x where ASHA stopped it and a + where it diverged."""
    answers = _answers(summary)
    fig, axes = _panels(list(answers), "Learning curves of all trials (x: stopped by ASHA, +: diverged)")
    xlabel = "epoch" + _validated_note(summary["trials"])
    last = max((len(t["curve"]) for t in summary["trials"]), default=1)
    lrs = [t["config"].get("lr") for t in summary["trials"] if (t["config"].get("lr") or 0) > 0]
    scale = plt.Normalize(math.log10(min(lrs)), math.log10(max(lrs)) + 1e-9) if lrs else None
    points = []
    for ax, subset in zip(axes, answers):
        trials = sorted((t for t in summary["trials"] if t["subset"] == subset and t["curve"]),
                        key=lambda t: t["config"].get("lr") or 0)
        for t in trials:
            lr = t["config"].get("lr")
            epochs = np.arange(1, len(t["curve"]) + 1)
            values = np.array([math.nan if v is None else v for v in t["curve"]])
            colour = plt.cm.viridis(scale(math.log10(lr))) if scale is not None and lr else None
            label = f"{t['experiment_id']}: lr {lr:.2g}" if lr else str(t["experiment_id"])
            scored = ~np.isnan(values)  # the validated epochs (eval_interval may skip some), joined, each marked
            line, = ax.plot(epochs[scored], 100 * values[scored], linewidth=1.2, alpha=0.85, color=colour, label=label,
                            marker="o", markersize=2.5)
            points += [(subset, t["trial_id"], e, v) for e, v in zip(epochs[scored], values[scored])]
            if t["stop_reason"] in ("stopped_by_asha", "diverged"):
                y = 0 if math.isnan(values[-1]) else 100 * values[-1]
                ax.scatter([epochs[-1]], [y], marker="x" if t["stop_reason"] == "stopped_by_asha" else "+", s=50,
                           color=line.get_color())
        ax.set(xlabel=xlabel, ylabel="val top-1 (%)", title=subset, xlim=(0.5, last + 0.5))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if 0 < len(trials) <= LEGEND_MAX:
            ax.legend(fontsize=7, title="experiment: learning rate", title_fontsize=7)
        elif trials and scale is not None:
            fig.colorbar(plt.cm.ScalarMappable(norm=scale, cmap="viridis"), ax=ax, label="log10 learning rate")
    save_figure(fig, out / "learning_curves.png")
    return Plot(out / "learning_curves.png", pd.DataFrame(points, columns=["subset", "series", "x", "y"]))


def _validated_note(trials: list[dict]) -> str:
    """Where the trials skipped validation (eval_interval): the epochs it was scored after, else nothing."""
    scored = sorted({e for t in trials for e, v in enumerate(t["curve"], start=1) if v is not None})
    last = max((len(t["curve"]) for t in trials), default=0)
    if not scored or len(scored) == last:
        return ""
    shown = ", ".join(map(str, scored[:8])) + (", ..." if len(scored) > 8 else "")
    return f" (validation scored after epoch{'s' if len(scored) > 1 else ''} {shown} only: eval_interval)"


def expected_max_plot(summary: dict, out: Path) -> Plot:
    """Dodge et al. (2019): expected best val top-1 vs number of trials, from ``expected_best`` (the independent
    random draws of the space only, at every budget all of them reached), with its 90% bootstrap band."""
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    points = []
    for curve in summary["expected_best"]:
        n = np.arange(1, len(curve["mean"]) + 1)
        line, = ax.plot(n, 100 * np.array(curve["mean"]), marker="o", markersize=3,
                        label=f"{curve['subset']}, epoch {curve['budget']} ({count(len(n), 'random draw')})")
        ax.fill_between(n, 100 * np.array(curve["low"]), 100 * np.array(curve["high"]), color=line.get_color(),
                        alpha=0.15)
        points += [(curve["subset"], f"epoch {curve['budget']}", k, v, lo, hi)
                   for k, v, lo, hi in zip(n, curve["mean"], curve["low"], curve["high"])]
    ax.set(xlabel="number of trials", ylabel="expected best val top-1 (%)")
    ax.set_title(f"Expected best accuracy vs tuning budget ({summary['study']['space']}; band: 90% bootstrap)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, out / "expected_max.png")
    return Plot(out / "expected_max.png", pd.DataFrame(points, columns=["subset", "series", "x", "y", "low", "high"]))


def data_budget(summary: dict, out: Path) -> Plot:
    """Val top-1 at the headline budget against the training clips per class, per sampling strategy, each point
    with the noise band (1.96 noise standard deviations either side)."""
    answers = _answers(summary)
    fig, axes = _panels(list(answers), "Accuracy vs training-set size (bars: the noise floor, 95%)")
    points = []
    for ax, (subset, answer) in zip(axes, answers.items()):
        sd = summary["noise_floors"][subset]["sd"] or 0.0
        groups: dict[str, list[tuple[float, float]]] = {}
        for t, score in _headline_scores(summary, subset):
            if t["train_clips_per_class"] is not None and t["stop_reason"] != "diverged":
                groups.setdefault(t["config"].get("sampling") or "stratified", []).append((t["train_clips_per_class"],
                                                                                           score))
        for strategy, xy in sorted(groups.items()):
            x, y = zip(*xy)
            y = 100 * np.array(y)
            band = 100 * 1.96 * sd  # cut to [0, 100]: an accuracy's interval holds nothing outside it
            ax.errorbar(x, y, yerr=[np.minimum(band, y), np.minimum(band, 100 - y)], fmt="o", capsize=3,
                        label=f"{strategy} sampling")
            points += [(subset, strategy, a, b) for a, b in xy]
        ax.set(xscale="log", xlabel="training clips per class", ylabel="val top-1 (%)")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ScalarFormatter())  # 2, 5, 10, 20: not 2x10^0 over its neighbours
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(_headline_title(answer), fontsize=9)
        ax.grid(alpha=0.3, which="both")
        if groups:
            ax.legend(fontsize=7)
    save_figure(fig, out / "data_budget.png")
    return Plot(out / "data_budget.png", pd.DataFrame(points, columns=["subset", "series", "x", "y"]))


def pretraining(summary: dict, out: Path) -> Plot:
    """Learning curves from scratch against fine-tuned from a checkpoint: every search trial thin, each group's mean
    val top-1 per epoch thick (over the trials that reached that epoch)."""
    answers = _answers(summary)
    fig, axes = _panels(list(answers), "Learning curves: from scratch vs pre-trained (thick: mean per epoch)")
    points = []
    for ax, subset in zip(axes, answers):
        for label, colour, tuned in (("from scratch", "tab:grey", False), ("pre-trained", "tab:red", True)):
            group = [t for t in _search(summary, subset) if (t["config"].get("pretrained") is not None) == tuned]
            curves = [pd.Series([math.nan if v is None else v for v in t["curve"]], index=range(1, len(t["curve"]) + 1))
                      for t in group if t["curve"]]
            for curve in (c.dropna() for c in curves):  # the validated epochs, joined
                ax.plot(curve.index, 100 * curve.to_numpy(), color=colour, alpha=0.3, linewidth=0.8)
            if curves:
                mean = pd.concat(curves, axis=1).mean(axis=1).dropna()
                ax.plot(mean.index, 100 * mean.to_numpy(), color=colour, linewidth=2.5,
                        label=f"{label} ({count(len(curves), 'trial')})")
                points += [(subset, label, e, v) for e, v in mean.items()]
        ax.set(xlabel="epoch", ylabel="val top-1 (%)", title=subset)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    save_figure(fig, out / "pretraining.png")
    return Plot(out / "pretraining.png", pd.DataFrame(points, columns=["subset", "series", "x", "y"]))


def figures(summary: dict, plots: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    """The figures this study can show, with their captions, and for each one it cannot, why not (said on the page
    instead of an empty or single-value panel)."""
    shown, drawn, absent = varied(summary), [], []
    tested = {r["parameter"] for r in summary["tables"].get("parameters", {}).get("rows", [])}
    searched = set(summary["trials"][0]["config"]) if summary["trials"] else set()

    def draw(wanted: bool, why_not: str, make: Callable[[dict, Path], Plot], caption: str) -> None:
        if wanted:
            drawn.append((make(summary, plots).path, caption))
        elif why_not:
            absent.append(why_not)

    draw("lr" in shown, "No learning-rate plot: every trial has the same learning rate.", lr_sensitivity, LR_CAPTION)
    draw(len(tested) >= 2, "No importance plot: it compares the searched parameters with each other, and fewer than two "
         "were tested (the table 'Does each parameter matter?' has the one test).", importance_by_budget,
         IMPORTANCE_CAPTION)
    draw({"lr", "batch_size"} <= shown, "No learning rate against batch size plot: the study varies "
         f"{'only the learning rate' if 'lr' in shown else 'not the learning rate'} of the two.", lr_batch,
         LR_BATCH_CAPTION)
    draw("scheduler" in shown, "No scheduler comparison: every trial uses the same scheduler.", scheduler_comparison,
         "Val top-1 per learning-rate scheduler at each subset's headline budget.")
    draw(bool(summary["trials"]), "", learning_curves, CURVES_CAPTION)
    draw(bool(summary["expected_best"]), "No expected-best-vs-trials curve: it needs at least two independent random "
         "draws of the space that reached a common budget, and this study's trials were placed by its sampler (a "
         "Sobol design or TPE: not independent draws).", expected_max_plot, EXPECTED_MAX_CAPTION)
    draw(bool({"fraction_per_class", "cap_per_class", "sampling"} & shown), "", data_budget, DATA_BUDGET_CAPTION)
    draw("pretrained" in searched and "pretrained" in shown, "", pretraining, PRETRAINING_CAPTION)
    return drawn, absent


LR_CAPTION = ("Validation top-1 against the learning rate at matched budgets: one colour per budget (an ASHA rung, where "
              "every trial that reached it is scored by its val top-1 there, or the last epoch of the completed trials), "
              "a marker per optimizer; crosses at the bottom are diverged trials; dashed: chance. Grey, where the study "
              "measured its seed noise: the scores that could belong to the best config at the headline budget (95%).")
IMPORTANCE_CAPTION = ("How much of the spread of scores each searched parameter explains (omega squared) at each budget, "
                      "filled at the headline budget (dotted line) where the permutation test finds that it matters "
                      "after Holm's correction over every parameter and subset, hollow where no effect was detected; at "
                      "the other budgets the points are descriptive. The table 'Does each parameter matter?' has the "
                      "p-values and each value's mean in points.")
LR_BATCH_CAPTION = ("Learning rate against batch size, coloured by val top-1 at the headline budget; dashed: the linear "
                    "scaling rule through the paper's recipe (lr 0.1 at batch 256); solid: the fitted lr* ~ batch^alpha "
                    "where estimated.")
CURVES_CAPTION = ("Validation top-1 at each validated epoch (every epoch unless the space sets eval_interval) for every "
                  "trial, one colour per trial by its learning rate (the legend names "
                  "each trial's experiment and learning rate); x marks where ASHA stopped a trial, + a divergence.")
EXPECTED_MAX_CAPTION = ("Expected best validation top-1 as a function of the number of trials (Dodge et al., 2019), "
                        "from the independent random draws of the space (random trials, or TPE's random start-up; a "
                        "Sobol design's points are not independent draws), diverged draws at chance, at each budget "
                        "every draw reached, with a 90% bootstrap band.")
DATA_BUDGET_CAPTION = ("Val top-1 at the headline budget against the training clips per class (log scale), per sampling "
                       "strategy (stratified: every class keeps its share; uniform: over all clips, keeping the class "
                       "imbalance); bars: the noise floor, 95%.")
PRETRAINING_CAPTION = ("Validation top-1 per epoch from scratch (grey) and fine-tuned from the checkpoint (red): each "
                       "search trial thin, the mean over trials per epoch thick.")
