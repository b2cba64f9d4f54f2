"""bench_gpu's plumbing on the CPU (the device machine has torch only, and its time is short): the one command runs
every section at tiny sizes and writes the figures file that ``study.run --plan`` reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from study import plan

ROOT = Path(__file__).resolve().parents[1]


def test_bench_gpu_runs_every_section_on_the_cpu_and_the_plan_reads_its_figures(data, tmp_path, monkeypatch):
    out = tmp_path / "figures.json"
    subprocess.run([sys.executable, "-m", "bench.bench_gpu", "--device", "cpu", "--quick", "--data", str(data),
                    "--out", str(out)], cwd=ROOT, check=True, capture_output=True, text=True)
    figures = json.loads(out.read_text())
    assert set(figures["steps"]) == {"4", "8"}
    for rows in figures["steps"].values():
        assert "bf16 off (fp32, TF32 off)" in rows and "original-style fp32 (TF32 off)" in rows
        assert all(row["clips_per_s"] > 0 for row in rows.values())
    assert {"pinned", "not pinned"} == set(figures["epoch"])
    assert all(0 < row["train_clips"] <= 160 and row["val_clips"] > 0 and row["checkpoint_s"] >= 0
               for row in figures["epoch"].values())
    assert all(rate > 0 for rate in figures["loader_clips_per_s"].values())
    assert {"without MPS, 1", "without MPS, 2"} <= set(figures["sharing"])
    assert len(figures["parity"]["bf16"]) == len(figures["parity"]["fp32"]) == 1

    monkeypatch.setattr(plan, "FIGURES", out)
    card = plan.Card(figures["card"], 24, 70)  # the plan takes the figures of the card they were measured on
    assert plan.measured_clips_per_s(card, 256) == figures["train_clips_per_s"]["8"]  # the nearest batch measured
    assert plan.measured_clips_per_s(plan.Card("no such card", 24, 70), 256) is None
