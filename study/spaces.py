"""Search spaces are data (search_spaces/<name>.yaml); this module validates one and turns it into an Optuna
define-by-run function, ASHA settings, a sampler, per-trial resources and a budget.

A space file:
    name: sgd_lr                        # optional; default the file's name
    description: what the experiment asks
    base: {TrainConfig fields}          # the paper recipe unless overridden
    cpu_profile: {TrainConfig fields}   # the labelled CPU-sized variant used on synthetic data
    params:                             # in order; a parameter may depend on one defined above it
      lr: {type: loguniform, low: 1.0e-4, high: 1.0}
      momentum: {type: uniform, low: 0.5, high: 0.99, when: {optimizer: sgd}}
    sampler: tpe                        # tpe | qmc (space-filling Sobol) | random
    startup_trials: 6                   # tpe only: random trials before TPE models (default: a quarter of trials)
    asha: {grace_period: 2, reduction_factor: 3, metric: val_loss}   # metric: val_loss (default) or val_top1
    report_budget: 2                    # optional: the epoch the report's findings lead with (an ASHA rung or the
                                        # last epoch); default the first rung, which every trial reaches
    trials: 24
    subsets: [kinetics-motion, kinetics-392]
    resources:                          # per trial, by network profile, with per-subset overrides
      paper: {cpus: 4, gpus: auto, kinetics-392: {gpus: 1}}   # auto: from the step's memory and the card
      cpu: {cpus: 1, gpus: 0}
    max_concurrent: 2
    include_paper_recipe: true
Parameter types: loguniform, uniform, int, choice (values), pow2 (integer powers of two in [low, high]).
``linear_scaling`` (a choice of true/false) multiplies lr by batch_size / 256, the paper's batch.
Relative paths in config values (classes_file, pretrained) are made absolute against the directory the study is
started from, once, and the study keeps that resolved copy of the space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from common.files import read_yaml_mapping
from kinetics.subsets import SUBSET_NAMES
from training.config import CPU_PROFILE, FIELD_TYPES, ConfigError, TrainConfig, absolute_paths, from_dict, is_path_field

SPACES_DIR = Path(str(resources.files("search_spaces")))  # in the source tree or where the package is installed
PARAM_TYPES = {"loguniform": {"low", "high"}, "uniform": {"low", "high"}, "int": {"low", "high"},
               "pow2": {"low", "high"}, "choice": {"values"}}
TOP_KEYS = {"name", "description", "base", "cpu_profile", "params", "sampler", "startup_trials", "asha", "report_budget",
            "trials",
            "subsets", "resources", "max_concurrent", "include_paper_recipe"}
ASHA_KEYS = {"grace_period", "reduction_factor", "metric"}
# What ASHA compares trials by at its rungs, and which way is better. The validation loss by default: on the synthetic
# set val top-1 sits at chance, tied, for the first epochs (Ray's ASHA lets trials tied at its cutoff through),
# while the loss already ranks the trials as their final top-1 will (docs/running.md, "Search spaces").
ASHA_METRICS = {"val_loss": "min", "val_top1": "max"}
SAMPLERS = ("tpe", "qmc", "random")
RESOURCE_KEYS = {"cpus", "gpus"}
# Per trial, when the space does not say. "auto": the share of a GPU is chosen from the memory a step needs at the
# space's largest batch (model/memory.py) and the cluster's cards (study/plan.py: gpu_share), not fixed.
DEFAULT_RESOURCES = {"paper": {"cpus": 4, "gpus": "auto"}, "cpu": {"cpus": 1, "gpus": 0}}
PAPER_BATCH = 256
SWITCHES = {"linear_scaling"}


class SpaceError(ValueError):
    """A search space file is invalid; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    values: tuple = ()
    when: dict[str, tuple] = field(default_factory=dict)

    def options(self) -> list | None:
        """Every value a choice or pow2 parameter can take; None for a range."""
        if self.kind == "pow2":
            return [2 ** k for k in range(int(math.log2(self.low)), int(math.log2(self.high)) + 1)]
        return list(self.values) if self.kind == "choice" else None

    def suggest(self, trial) -> Any:
        if self.kind == "loguniform":
            return trial.suggest_float(self.name, self.low, self.high, log=True)
        if self.kind == "uniform":
            return trial.suggest_float(self.name, self.low, self.high)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_categorical(self.name, self.options())

    def applies(self, chosen: dict) -> bool:
        return all(chosen.get(parent) in allowed for parent, allowed in self.when.items())


@dataclass(frozen=True)
class SearchSpace:
    name: str
    path: Path
    description: str
    base: dict
    cpu_profile: dict
    params: tuple[Param, ...]
    sampler: str
    startup_trials: int
    grace_period: int
    reduction_factor: int
    asha_metric: str
    trials: int
    subsets: tuple[str, ...]
    resources: dict  # profile ("paper" or "cpu") -> {cpus, gpus, subset -> {cpus, gpus}}
    max_concurrent: int
    include_paper_recipe: bool
    raw: dict  # the file's mapping, paths made absolute: what the study stores as its copy

    def define_by_run(self, trial) -> None:
        """Optuna define-by-run: conditional parameters are suggested only when their parents allow."""
        chosen = dict(self.base)
        for param in self.params:
            if param.applies(chosen):
                chosen[param.name] = param.suggest(trial)

    @property
    def searched(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def base_config(self, cpu: bool) -> dict:
        return {**self.base, **(self.cpu_profile if cpu else {})}

    def to_config(self, sampled: dict, cpu: bool, overrides: dict | None = None) -> TrainConfig:
        """A trial's sample plus the base (and CPU profile) -> the validated TrainConfig it trains."""
        values = {**self.base_config(cpu), **{k: v for k, v in sampled.items() if k not in SWITCHES},
                  **(overrides or {})}
        if sampled.get("linear_scaling"):
            values["lr"] = values.get("lr", TrainConfig.lr) * values.get("batch_size", TrainConfig.batch_size) / PAPER_BATCH
        return from_dict(values, source=f"{self.path} (trial {sampled})")

    def paper_point(self, cpu: bool) -> dict:
        """The paper recipe expressed in this space's parameters, for the first trial."""
        paper = {**TrainConfig().to_dict(), **(self.cpu_profile if cpu else {})}
        point: dict = {}
        for param in self.params:
            if not param.applies({**paper, **point}):
                continue
            value = False if param.name in SWITCHES else paper[param.name]
            options = param.options()
            if options is not None:
                value = min(options, key=lambda o: abs(o - value) if _numbers(o, value) else o != value)
            elif value is None:  # unset in the paper (no sampling): the range's top, the whole training set
                value = param.high
            else:
                value = min(max(value, param.low), param.high)
            point[param.name] = value
        return point

    def trial_resources(self, cpu: bool, subset: str) -> dict[str, float | None]:
        """Ray resources of one trial of ``subset`` with the CPU-sized (``cpu``) or the paper-shape network; a GPU
        share of None is 'auto' (chosen from the memory a step needs and the cluster's cards)."""
        profile = self.resources["cpu" if cpu else "paper"]
        chosen = {**{k: profile[k] for k in RESOURCE_KEYS}, **profile.get(subset, {})}
        return {"cpu": float(chosen["cpus"]), "gpu": None if chosen["gpus"] == "auto" else float(chosen["gpus"])}

    def dump(self) -> str:
        return (f"# search space '{self.name}' as the study started it, from {self.path}; relative paths made "
                f"absolute\n" + yaml.safe_dump({"name": self.name, **self.raw}, sort_keys=False))


def _numbers(*values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _fail(path: Path, key: str, problem: str) -> SpaceError:
    return SpaceError(f"{path}: {key}: {problem}")


def _check_known(path: Path, where: str, mapping: dict, known: set[str]) -> None:
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise _fail(path, where, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")


def _param(path: Path, name: str, spec: Any, earlier: dict[str, Param], fixed: list[dict]) -> Param:
    where = f"params.{name}"
    if name not in FIELD_TYPES and name not in SWITCHES:
        searchable = ", ".join(sorted(set(FIELD_TYPES) | SWITCHES))
        raise _fail(path, where, f"not a config field; searchable: {searchable}")
    if not isinstance(spec, dict) or "type" not in spec:
        raise _fail(path, where, f"needs 'type', one of {', '.join(PARAM_TYPES)}")
    if spec["type"] not in PARAM_TYPES:
        raise _fail(path, f"{where}.type", f"{spec['type']!r} is not a parameter type; one of {', '.join(PARAM_TYPES)}")
    kind = spec["type"]
    _check_known(path, where, spec, {"type", "when"} | PARAM_TYPES[kind])
    missing = PARAM_TYPES[kind] - set(spec)
    if missing:
        raise _fail(path, where, f"type {kind} needs {', '.join(sorted(missing))}")
    when = {}
    for parent, allowed in (spec.get("when") or {}).items():
        allowed = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        _check_parent(path, f"{where}.when", parent, allowed, earlier, fixed)
        when[parent] = allowed
    if kind == "choice":
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise _fail(path, f"{where}.values", "must be a non-empty list")
        return Param(name, kind, values=tuple(values), when=when)
    low, high = spec["low"], spec["high"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise _fail(path, where, f"low and high must be numbers, got {low!r} and {high!r}")
    if not low < high:
        raise _fail(path, where, f"empty or inverted range [{low}, {high}]; low must be below high")
    if kind in ("loguniform", "pow2") and low <= 0:
        raise _fail(path, where, f"a log range cannot touch 0 (low is {low}); use a positive low such as 1e-5")
    if kind == "pow2" and not all(float(v).is_integer() and math.log2(v).is_integer() for v in (low, high)):
        raise _fail(path, where, f"pow2 bounds must be powers of two, got {low} and {high}")
    if kind == "pow2" and low < 2:
        raise _fail(path, where, f"pow2 low must be at least 2, got {low} (a batch of 1 cannot train BatchNorm)")
    return Param(name, kind, float(low), float(high), when=when)


def _check_parent(path: Path, where: str, parent: str, allowed: tuple, earlier: dict[str, Param],
                  fixed: list[dict]) -> None:
    """A condition on a parent must be one it can meet: every allowed value is one the parent can take."""
    if parent in earlier:
        possible = earlier[parent].options()
        if possible is None:
            raise _fail(path, where, f"parent '{parent}' is a range; a condition needs a choice or pow2 parent")
    elif all(parent in values for values in fixed):
        possible = [values[parent] for values in fixed]
    else:
        raise _fail(path, where, f"parent '{parent}' is neither a parameter defined above nor a config field; "
                                 "define the parent first")
    never = [value for value in allowed if value not in possible]
    if never:
        raise _fail(path, where, f"'{parent}' can never be {', '.join(map(repr, never))} (it takes "
                                 f"{', '.join(map(repr, dict.fromkeys(possible)))}), so the condition never holds")


def _resources(path: Path, raw: Any) -> dict:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise _fail(path, "resources", "must map a profile (paper, cpu) to {cpus, gpus}")
    _check_known(path, "resources", raw, set(DEFAULT_RESOURCES))
    resolved = {}
    for profile, default in DEFAULT_RESOURCES.items():
        given = raw.get(profile) or {}
        where = f"resources.{profile}"
        _check_known(path, where, given, RESOURCE_KEYS | set(SUBSET_NAMES))
        merged = {**default, **given}
        for scope, values in [(where, merged), *((f"{where}.{s}", merged[s]) for s in SUBSET_NAMES if s in merged)]:
            if scope != where:
                _check_known(path, scope, values, RESOURCE_KEYS)
            for key in RESOURCE_KEYS & set(values):
                value = values[key]
                if key == "gpus" and value == "auto":
                    continue
                if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or \
                        (key == "cpus" and value == 0):
                    raise _fail(path, f"{scope}.{key}", f"must be a number > 0 (gpus may be 0 or auto), got {value!r}")
        resolved[profile] = merged
    return resolved


def _resolve_paths(raw: dict, root: Path) -> dict:
    """Config values that are paths, made absolute against ``root``: in base, cpu_profile and choice values."""
    out = {**raw, "base": absolute_paths(raw.get("base") or {}, root),
           "cpu_profile": absolute_paths(raw.get("cpu_profile") or {}, root)}
    params = {}
    for name, spec in (raw.get("params") or {}).items():
        if is_path_field(name) and isinstance(spec, dict) and isinstance(spec.get("values"), list):
            spec = {**spec, "values": [absolute_paths({name: v}, root)[name] for v in spec["values"]]}
        params[name] = spec
    return {**out, "params": params}


def shipped_spaces() -> list[tuple[str, str]]:
    """The named spaces (search_spaces/*.yaml) with the first sentence of each one's description."""
    out = []
    for path in sorted(SPACES_DIR.glob("*.yaml")):
        text = " ".join(str(read_yaml_mapping(path, SpaceError, "search space").get("description", "")).split())
        out.append((path.stem, text.split(". ")[0].rstrip(".") + "." if text else ""))
    return out


def load_space(name_or_path: str | Path, paths_relative_to: Path | None = None) -> SearchSpace:
    """A space by name (search_spaces/<name>.yaml) or by path; validated before anything starts. Relative paths
    in its config values are taken against ``paths_relative_to`` (default: the current directory)."""
    path = Path(name_or_path).expanduser()
    if not path.suffix:
        path = SPACES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SPACES_DIR.glob("*.yaml")))
        raise SpaceError(f"{path}: no such search space; known spaces: {known}")
    path = path.resolve()
    raw = read_yaml_mapping(path, SpaceError, "search space")
    _check_known(path, "top level", raw, TOP_KEYS)
    raw = _resolve_paths(raw, paths_relative_to or Path.cwd())
    base, cpu = raw["base"], {**CPU_PROFILE, **raw["cpu_profile"]}
    profiles = {}
    for where, values in (("base", base), ("cpu_profile", {**base, **cpu})):
        try:
            profiles[where] = from_dict(values, source=f"{path}: {where}")
        except ConfigError as exc:
            raise SpaceError(str(exc)) from exc
    params: dict[str, Param] = {}
    for name, spec in (raw.get("params") or {}).items():
        params[name] = _param(path, name, spec, params, [p.to_dict() for p in profiles.values()])
    if not params:
        raise _fail(path, "params", "no parameter to search; add at least one")
    asha = raw.get("asha") or {}
    _check_known(path, "asha", asha, ASHA_KEYS)
    subsets = raw.get("subsets") or list(SUBSET_NAMES)
    unknown = [s for s in subsets if s not in SUBSET_NAMES]
    if unknown:
        raise _fail(path, "subsets", f"unknown subset(s) {', '.join(unknown)}; choose from {', '.join(SUBSET_NAMES)}")
    if asha.get("metric", "val_loss") not in ASHA_METRICS:
        raise _fail(path, "asha.metric", f"unknown metric {asha['metric']!r}; choose one of {', '.join(ASHA_METRICS)}")
    sampler = raw.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise _fail(path, "sampler", f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    trials = int(raw.get("trials", 16))
    report_budget = raw.get("report_budget")
    if report_budget is not None and (not isinstance(report_budget, int) or isinstance(report_budget, bool)
                                      or report_budget < 1):
        raise _fail(path, "report_budget", f"must be an epoch (an integer >= 1), got {report_budget!r}")
    space = SearchSpace(
        name=str(raw.get("name", path.stem)), path=path, description=str(raw.get("description", "")).strip(),
        base=base, cpu_profile=cpu,
        params=tuple(params.values()), sampler=sampler,
        startup_trials=int(raw.get("startup_trials", max(1, min(10, trials // 4)))),
        grace_period=int(asha.get("grace_period", 1)), reduction_factor=int(asha.get("reduction_factor", 3)),
        asha_metric=str(asha.get("metric", "val_loss")),
        trials=trials, subsets=tuple(subsets), resources=_resources(path, raw.get("resources")),
        max_concurrent=int(raw.get("max_concurrent", 2)),
        include_paper_recipe=bool(raw.get("include_paper_recipe", True)), raw=raw)
    for key, value, minimum in (("asha.grace_period", space.grace_period, 1), ("asha.reduction_factor",
                                space.reduction_factor, 2), ("trials", space.trials, 1),
                                ("max_concurrent", space.max_concurrent, 1), ("startup_trials", space.startup_trials, 1)):
        if value < minimum:
            raise _fail(path, key, f"must be >= {minimum}, got {value}")
    if "epochs" not in params:
        for where, config in profiles.items():
            check_grace_period(space, config.epochs, f"{path}: asha.grace_period", f"the {where} epochs")
    return space


def check_grace_period(space: SearchSpace, epochs: int, where: str, what: str) -> None:
    """ASHA's first rung must come before the last epoch, or it never stops a trial."""
    if space.grace_period >= epochs:
        raise SpaceError(f"{where}: grace period {space.grace_period} is not below {what} ({epochs}), so ASHA would "
                         "never stop a trial; lower asha.grace_period, or run with --no-early-stopping")
