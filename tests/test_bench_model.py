"""bench_model's per-layer mode, which sets the dense contraction's threshold: it times every graph convolution
shape the network has at a width, and names the form the network picks for it on this CPU."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.bench_model import layer_shapes
from model.stgcn import DENSE_MAX_CHANNEL_PRODUCT

ROOT = Path(__file__).resolve().parents[1]


def test_layer_shapes_follow_the_blocks_channels_and_strides():
    class Args:
        width, frames = 0.125, 40

    # the CPU profile: strides 2 at blocks 5 and 8 halve time in the temporal convolution, after the graph one
    assert layer_shapes(Args) == [(3, 8, 40), (8, 8, 40), (8, 16, 40), (16, 16, 20), (16, 32, 20), (32, 32, 10)]


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
