"""Search spaces are data (search_spaces/<name>.yaml); this module validates one and turns it into an Optuna
define-by-run function, ASHA settings and a budget.

A space file:
    description: what the experiment asks
    base: {TrainConfig fields}          # the paper recipe unless overridden
    cpu_profile: {TrainConfig fields}   # the labelled CPU-sized variant used on synthetic data
    params:                             # in order; a parameter may depend on one defined above it
      lr: {type: loguniform, low: 1.0e-4, high: 1.0}
      momentum: {type: uniform, low: 0.5, high: 0.99, when: {optimizer: sgd}}
    asha: {grace_period: 2, reduction_factor: 3}
    trials: 24
    subsets: [kinetics-motion, kinetics-392]
    resources: {cpus: 1, gpus: 0}
    max_concurrent: 2
    include_paper_recipe: true
Parameter types: loguniform, uniform, int, choice (values), pow2 (integer powers of two in [low, high]).
``linear_scaling`` (a choice of true/false) multiplies lr by batch_size / 256, the paper's batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from study.config import CPU_PROFILE, FIELD_TYPES, ConfigError, TrainConfig, from_dict
from study.data.subsets import SUBSET_NAMES
from study.files import read_yaml_mapping

SPACES_DIR = Path(__file__).resolve().parents[1] / "search_spaces"
PARAM_TYPES = {"loguniform": {"low", "high"}, "uniform": {"low", "high"}, "int": {"low", "high"},
               "pow2": {"low", "high"}, "choice": {"values"}}
TOP_KEYS = {"description", "base", "cpu_profile", "params", "asha", "trials", "subsets", "resources",
            "max_concurrent", "include_paper_recipe"}
ASHA_KEYS = {"grace_period", "reduction_factor"}
RESOURCE_KEYS = {"cpus", "gpus"}
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

    def suggest(self, trial) -> Any:
        if self.kind == "loguniform":
            return trial.suggest_float(self.name, self.low, self.high, log=True)
        if self.kind == "uniform":
            return trial.suggest_float(self.name, self.low, self.high)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        if self.kind == "pow2":
            return trial.suggest_categorical(self.name, [2 ** k for k in range(int(math.log2(self.low)),
                                                                                int(math.log2(self.high)) + 1)])
        return trial.suggest_categorical(self.name, list(self.values))

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
    grace_period: int
    reduction_factor: int
    trials: int
    subsets: tuple[str, ...]
    cpus: float
    gpus: float
    max_concurrent: int
    include_paper_recipe: bool

    def define_by_run(self, trial) -> None:
        """Optuna define-by-run: conditional parameters are suggested only when their parents allow."""
        chosen = dict(self.base)
        for param in self.params:
            if param.applies(chosen):
                chosen[param.name] = param.suggest(trial)

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
        """The paper recipe expressed in this space's parameters, for points_to_evaluate."""
        paper = {**TrainConfig().to_dict(), **(self.cpu_profile if cpu else {})}
        point: dict = {}
        for param in self.params:
            if not param.applies({**paper, **point}):
                continue
            value = False if param.name in SWITCHES else paper[param.name]
            if param.kind == "pow2" or param.kind == "choice":
                options = param.values if param.kind == "choice" else [2 ** k for k in range(
                    int(math.log2(param.low)), int(math.log2(param.high)) + 1)]
                value = min(options, key=lambda o: abs(o - value) if isinstance(o, (int, float)) else o != value)
            elif param.low is not None:
                value = min(max(value, param.low), param.high)
            point[param.name] = value
        return point


def _fail(path: Path, key: str, problem: str) -> SpaceError:
    return SpaceError(f"{path}: {key}: {problem}")


def _check_known(path: Path, where: str, mapping: dict, known: set[str]) -> None:
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise _fail(path, where, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")


def _param(path: Path, name: str, spec: Any, earlier: set[str], fixed: dict) -> Param:
    where = f"params.{name}"
    if name not in FIELD_TYPES and name not in SWITCHES:
        searchable = ", ".join(sorted(set(FIELD_TYPES) | SWITCHES))
        raise _fail(path, where, f"not a config field; searchable: {searchable}")
    if not isinstance(spec, dict) or spec.get("type") not in PARAM_TYPES:
        raise _fail(path, where, f"needs 'type', one of {', '.join(PARAM_TYPES)}")
    kind = spec["type"]
    _check_known(path, where, spec, {"type", "when"} | PARAM_TYPES[kind])
    missing = PARAM_TYPES[kind] - set(spec)
    if missing:
        raise _fail(path, where, f"type {kind} needs {', '.join(sorted(missing))}")
    when = {}
    for parent, allowed in (spec.get("when") or {}).items():
        if parent not in earlier and parent not in fixed:
            raise _fail(path, f"{where}.when", f"parent '{parent}' is neither a parameter defined above nor in base; "
                        "define the parent first")
        when[parent] = tuple(allowed) if isinstance(allowed, list) else (allowed,)
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
    return Param(name, kind, float(low), float(high), when=when)


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A space by name (search_spaces/<name>.yaml) or by path; validated before anything starts."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SPACES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SPACES_DIR.glob("*.yaml")))
        raise SpaceError(f"{path}: no such search space; known spaces: {known}")
    raw = read_yaml_mapping(path, SpaceError, "search space")
    _check_known(path, "top level", raw, TOP_KEYS)
    base, cpu = raw.get("base") or {}, {**CPU_PROFILE, **(raw.get("cpu_profile") or {})}
    for where, values in (("base", base), ("cpu_profile", cpu)):
        try:
            from_dict(values if where == "base" else {**base, **values}, source=f"{path}: {where}")
        except ConfigError as exc:
            raise SpaceError(str(exc)) from exc
    params, earlier = [], set()
    for name, spec in (raw.get("params") or {}).items():
        params.append(_param(path, name, spec, earlier, base))
        earlier.add(name)
    if not params:
        raise _fail(path, "params", "no parameter to search; add at least one")
    asha = raw.get("asha") or {}
    _check_known(path, "asha", asha, ASHA_KEYS)
    resources = raw.get("resources") or {}
    _check_known(path, "resources", resources, RESOURCE_KEYS)
    subsets = raw.get("subsets") or list(SUBSET_NAMES)
    unknown = [s for s in subsets if s not in SUBSET_NAMES]
    if unknown:
        raise _fail(path, "subsets", f"unknown subset(s) {', '.join(unknown)}; choose from {', '.join(SUBSET_NAMES)}")
    space = SearchSpace(
        name=path.stem, path=path, description=str(raw.get("description", "")).strip(), base=base, cpu_profile=cpu,
        params=tuple(params), grace_period=int(asha.get("grace_period", 1)),
        reduction_factor=int(asha.get("reduction_factor", 3)), trials=int(raw.get("trials", 16)),
        subsets=tuple(subsets), cpus=float(resources.get("cpus", 1)), gpus=float(resources.get("gpus", 0)),
        max_concurrent=int(raw.get("max_concurrent", 2)),
        include_paper_recipe=bool(raw.get("include_paper_recipe", True)))
    for key, value, minimum in (("asha.grace_period", space.grace_period, 1), ("asha.reduction_factor",
                                space.reduction_factor, 2), ("trials", space.trials, 1),
                                ("max_concurrent", space.max_concurrent, 1)):
        if value < minimum:
            raise _fail(path, key, f"must be >= {minimum}, got {value}")
    if not 0 <= space.gpus:
        raise _fail(path, "resources.gpus", f"must be >= 0 (fractions share a GPU), got {space.gpus}")
    return space
