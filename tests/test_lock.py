"""requirements.lock (what the README's commands install) and pyproject.toml (what users get) cannot drift
apart: every declared requirement is pinned in the lock at a version it allows, the lock's direct
dependencies are exactly the declared ones, and this environment holds exactly the locked versions."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "stgcn-study (pyproject.toml)"


def parse_lock(text: str) -> dict[str, tuple[str, set[str]]]:
    """name -> (pinned version, what the lock says pulled it in)."""
    pins: dict[str, tuple[str, set[str]]] = {}
    current = None
    for line in text.splitlines():
        pin = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line)
        if pin:
            current = canonicalize_name(pin.group(1))
            pins[current] = (pin.group(2), set())
            continue
        via = re.match(r"^\s+#\s+(?:via\s+)?(.+)$", line)
        if current and via and via.group(1).strip() != "via":
            pins[current][1].add(via.group(1).strip())
    return pins


def declared() -> list[tuple[Requirement, str]]:
    """(requirement, where) for the dependencies, every extra (dev, watch) and the build requirements."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    found = [(Requirement(r), PROJECT) for r in project["dependencies"]]
    found += [(Requirement(r), PROJECT) for extra in project["optional-dependencies"].values() for r in extra]
    found += [(Requirement(r), "stgcn-study (pyproject.toml::build-system.requires)")
              for r in pyproject["build-system"]["requires"]]
    return found


@pytest.fixture(scope="module")
def lock() -> dict[str, tuple[str, set[str]]]:
    return parse_lock((ROOT / "requirements.lock").read_text())


def test_every_declared_requirement_is_pinned_at_a_version_it_allows(lock):
    for requirement, where in declared():
        name = canonicalize_name(requirement.name)
        assert name in lock, f"pyproject.toml asks for {requirement}, requirements.lock has no {name}: run bash .ci/lock"
        version, via = lock[name]
        assert requirement.specifier.contains(version, prereleases=True), \
            f"requirements.lock pins {name}=={version}, outside pyproject.toml's {requirement}: run bash .ci/lock"
        assert where in via, f"requirements.lock does not list {name} as required by {where}: run bash .ci/lock"


def test_the_locks_direct_dependencies_are_exactly_the_declared_ones(lock):
    direct = {name for name, (_, via) in lock.items() if any(v.startswith("stgcn-study (pyproject.toml") for v in via)}
    assert direct == {canonicalize_name(r.name) for r, _ in declared()}, \
        "requirements.lock was made from other dependencies than pyproject.toml's: run bash .ci/lock"


def test_the_extras_asked_for_are_in_the_lock(lock):
    """ray[tune,default]: what those extras add must be pinned too (read from the installed package's metadata)."""
    for requirement, _ in declared():
        for extra in requirement.extras:
            environment = {**default_environment(), "extra": extra}
            for line in metadata.requires(requirement.name) or []:
                needed = Requirement(line)
                if needed.marker and "extra" in str(needed.marker) and needed.marker.evaluate(environment):
                    assert canonicalize_name(needed.name) in lock, f"{requirement.name}[{extra}] needs {needed.name}"


def test_this_environment_holds_exactly_the_locked_versions(lock):
    for name, (version, _) in lock.items():
        assert metadata.version(name) == version, f"{name}: installed {metadata.version(name)}, locked {version}; " \
                                                  "run bash .ci/venv"


def test_the_drift_check_reads_what_pip_compile_writes():
    text = ("numpy==2.0.0 \\\n    --hash=sha256:ab\n    # via\n    #   pandas\n    #   stgcn-study (pyproject.toml)\n"
            "tzdata==2024.1 \\\n    --hash=sha256:cd\n    # via pandas\n")
    assert parse_lock(text) == {"numpy": ("2.0.0", {"pandas", PROJECT}), "tzdata": ("2024.1", {"pandas"})}
