"""Ray's private API lives in study/ray_compat.py alone, bounded to the releases it was checked on."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import ray

from study import ray_compat

ROOT = Path(__file__).resolve().parents[1]


def test_the_installed_ray_is_one_the_private_api_was_checked_on():
    ray_compat.check_version()
    assert ".".join(ray.__version__.split(".")[:2]) in ray_compat.TESTED_RAY


def test_another_ray_release_is_refused_naming_what_to_install():
    with pytest.raises(ray_compat.UntestedRay, match=r"Ray 2\.99\.0 is installed; .*pip install 'ray\[tune,default\]=="):
        ray_compat.check_version("2.99.0")


def test_pyproject_bounds_ray_to_the_checked_releases():
    text = (ROOT / "pyproject.toml").read_text()
    bound = re.search(r'"ray\[tune,default\]>=([\d.]+),<([\d.]+)"', text)
    assert bound and bound.group(1) == min(ray_compat.TESTED_RAY)
    upper = tuple(map(int, bound.group(2).split(".")))
    assert all(tuple(map(int, v.split("."))) < upper for v in ray_compat.TESTED_RAY)


def test_no_other_module_reaches_into_rays_private_api():
    for source in sorted(ROOT.glob("*/*.py")):
        if source.parts[-2] in ("tests", "bench") or source.name == "ray_compat.py":
            continue
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("ray"):
                    assert not any(part.startswith("_") for part in name.split(".")), f"{source}: {name}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ray"):
                assert not any(a.name.startswith("_") for a in node.names), f"{source}: {node.module}"
