"""bench_model's per-layer mode, which sets the dense contraction's threshold: it times every graph convolution
shape the network has at a width, and names the form the network picks for it on this CPU; and each temporal
convolution against its own products as matmuls and the square GEMM. The step's ceiling from its profile."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.bench_model import contraction_ceiling, layer_shapes, temporal_shapes
from model.stgcn import DENSE_MAX_CHANNEL_PRODUCT

ROOT = Path(__file__).resolve().parents[1]


def test_layer_shapes_follow_the_blocks_channels_and_strides():
    class Args:
        width, frames = 0.125, 40

    # the CPU profile: strides 2 at blocks 5 and 8 halve time in the temporal convolution, after the graph one
    assert layer_shapes(Args) == [(3, 8, 40), (8, 8, 40), (8, 16, 40), (16, 16, 20), (16, 32, 20), (32, 32, 10)]
    # the temporal convolutions: (channels, input frames, stride), the stride in the convolution itself
    assert temporal_shapes(Args) == [(8, 40, 1), (16, 40, 2), (16, 20, 1), (32, 20, 2), (32, 10, 1)]


def test_the_ceiling_is_the_bound_over_the_time_the_contractions_take():
    shares = {"convolutions": 0.7, "aggregation (bmm/mm)": 0.1, "batch norm": 0.15, "ReLU": 0.05}
    contractions, ceiling = contraction_ceiling(shares, step_s=2.0, bound_s=1.2)
    assert round(contractions, 9) == 0.8 and round(ceiling, 9) == 0.75  # 1.2 s of bound over 1.6 s of contractions


def test_layers_mode_times_each_shape_and_names_the_form_picked():
    run = subprocess.run([sys.executable, "-m", "bench.bench_model", "--layers", "--width", "0.125", "--frames", "8",
                          "--batch", "1", "--threads", "1", "--repeats", "1"],
                         cwd=ROOT, check=True, capture_output=True, text=True)
    rows = re.findall(r"^\s*(\d+) -> (\d+)\s+T=(\d+)\s+dense\s+([\d.]+) ms, factored\s+([\d.]+) ms.*picked: (\w+)$",
                      run.stdout, flags=re.M)
    assert [(int(a), int(b)) for a, b, *_ in rows] == [(3, 8), (8, 8), (8, 16), (16, 16), (16, 32), (32, 32)]
    for c_in, c_out, _, dense, factored, picked in rows:
        assert float(dense) > 0 and float(factored) > 0
        assert picked == ("dense" if int(c_in) * int(c_out) <= DENSE_MAX_CHANNEL_PRODUCT else "factored")
    temporal = re.findall(r"^\s*(\d+) ch T=(\d+)\s+stride (\d): convolution\s+(\d+) GFLOP/s, the same products as "
                          r"matmuls\s+(\d+) GFLOP/s, square GEMM\s+(\d+) GFLOP/s", run.stdout, flags=re.M)
    assert [tuple(map(int, row[:3])) for row in temporal] == [(8, 8, 1), (16, 8, 2), (16, 4, 1), (32, 4, 2), (32, 2, 1)]
    assert "written to" not in run.stdout  # a custom shape writes no results file
