"""The packages form layers: each imports only packages below it, so there is no import cycle, and the report
runs on a laptop without the training stack (no torch, no Ray)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Bottom to top: what both of two layers need sits below both of them.
LAYERS = ("common", "model", "kinetics", "training", "reports", "study")


def imported_packages(package: str) -> dict[str, set[str]]:
    """module path -> the project packages it imports (absolute imports; the project uses no relative ones)."""
    found = {}
    for source in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{source}: relative import"
                names.add(node.module.split(".")[0])
        found[str(source.relative_to(ROOT))] = names & set(LAYERS)
    return found


def test_each_package_imports_only_the_layers_below_it():
    for position, package in enumerate(LAYERS):
        allowed = set(LAYERS[:position + 1])
        for module, packages in imported_packages(package).items():
            assert packages <= allowed, f"{module} imports {sorted(packages - allowed)}, a layer above {package}"


def test_the_layer_check_sees_a_violation(tmp_path, monkeypatch):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "bad.py").write_text("from training.config import TrainConfig\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert imported_packages("model") == {"model/bad.py": {"training"}}


def test_the_report_imports_neither_torch_nor_ray():
    code = "import sys, reports.build; print(sorted(m for m in ('torch', 'ray') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
