"""The GPU path before the first GPU hour: the memory a step needs, the GPU share sized from it, and the plan of a
study on a cluster file (node type, trials per node and at once, epochs under ASHA, GPU-hours)."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.memory import GIB, step_memory
from study.plan import CARDS, PlanError, expected_epochs, gpu_share, share_on_cluster
from study.run import main

ROOT = Path(__file__).resolve().parents[1]
SPACES = sorted(p.stem for p in (ROOT / "search_spaces").glob("*.yaml"))


def test_a_steps_memory_grows_with_batch_frames_and_width_and_bf16_keeps_less():
    paper = step_memory(width=1.0, frames=150, classes=30, amp=False)
    assert paper.total(256) - paper.total(128) == 128 * paper.activations_per_clip
    assert 80e6 < paper.activations_per_clip < 160e6  # about 110 MB a clip kept for the backward in fp32
    assert step_memory(width=1.0, frames=150, classes=30, amp=True).activations_per_clip < \
        0.7 * paper.activations_per_clip
    assert step_memory(width=1.0, frames=300, classes=30, amp=False).activations_per_clip > \
        1.8 * paper.activations_per_clip
    assert step_memory(width=0.125, frames=150, classes=30, amp=False).activations_per_clip < \
        0.2 * paper.activations_per_clip


def test_the_gpu_share_is_the_largest_that_holds_a_step_and_none_when_no_card_does():
    assert gpu_share(17 * GIB, CARDS["A10G"]) == 1.0  # batch 256 in bf16 on a 24 GB card: a whole card
    assert gpu_share(17 * GIB, CARDS["H100"]) == 0.25
    assert gpu_share(40 * GIB, CARDS["A10G"]) is None
    share, why = share_on_cluster(17 * GIB, ["A10G", "H100"])
    assert share == 1.0 and "A10G" in why  # the smallest card decides: a trial may land on it
    assert share_on_cluster(17 * GIB, [])[0] == 1.0


def test_asha_runs_every_trial_to_its_first_rung_and_a_third_of_them_to_each_next():
    assert expected_epochs(48, 50, 1, 3, True) == pytest.approx(48 + 16 * 2 + 48 / 9 * 6 + 48 / 27 * 18 + 48 / 81 * 23)
    assert expected_epochs(48, 50, 1, 3, False) == 48 * 50


@pytest.mark.parametrize("cluster", ["cluster.yaml", "cluster-local.yaml"])
@pytest.mark.parametrize("space", SPACES)
def test_every_shipped_space_is_planned_on_both_cluster_files(data, cluster, space, capsys):
    assert main(["--space", space, "--data", str(data), "--plan", str(ROOT / cluster)]) == 0
    out = capsys.readouterr().out
    for subset in ("kinetics-motion", "kinetics-392"):
        line = next(line for line in out.splitlines() if line.startswith(f"{subset}: node type"))
        assert "trial(s) per node" in line and "at once" in line
    assert "GPU-hours" in out and "epochs expected" in out and "ASSUMED" in out
    assert out.strip().splitlines()[-1].startswith("study: ")  # the total across the subsets
    if cluster == "cluster.yaml":  # every node type the trials fit, the cheapest planned, money included
        assert "also fits gpu_large" in out and "$" in out and "on-demand list price" in out


def test_without_real_data_the_plan_uses_the_releases_counts_and_says_so(capsys):
    assert main(["--space", "sgd_lr", "--plan", str(ROOT / "cluster.yaml")]) == 0
    out = capsys.readouterr().out
    assert "Kinetics-skeleton as released (240,436 training and 19,796 validation clips over 400 classes" in out
    assert "(18,033 training and 1,485 validation clips each)" in out  # 30 of the 400 classes, at the average
    motion = out.split("kinetics-392:")[0]
    assert "page cache" not in motion  # kinetics-motion's share of the array fits a 16 GiB node


def test_a_price_the_cluster_file_declares_is_the_one_planned(tmp_path, capsys):
    import yaml
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    config["available_node_types"]["gpu_small"]["labels"] = {"price-usd-per-hour": "0.5"}
    (tmp_path / "priced.yaml").write_text(yaml.safe_dump(config))
    assert main(["--space", "sgd_lr", "--plan", str(tmp_path / "priced.yaml")]) == 0
    assert "at $0.5/h (the price the cluster file declares)" in capsys.readouterr().out


def test_a_space_whose_trials_fit_no_node_type_is_refused_naming_why(data, tmp_path, capsys):
    space = tmp_path / "big.yaml"
    space.write_text("base: {batch_size: 2048}\nparams:\n  lr: {type: loguniform, low: 1.0e-3, high: 0.1}\n"
                     "resources: {paper: {cpus: 64}}\n")
    assert main(["--space", str(space), "--data", str(data), "--plan", str(ROOT / "cluster.yaml")]) == 2
    err = capsys.readouterr().err
    assert "its trials fit no node type" in err and "gpu_small: a A10G has 24 GiB, a trial needs" in err
    assert "head has no GPU" in err or "gpu_large" in err


def test_a_cluster_file_the_plan_cannot_read_is_an_error_naming_it(data, tmp_path, capsys):
    bad = tmp_path / "odd.yaml"
    bad.write_text("available_node_types:\n  w: {node_config: {InstanceType: x9.huge}, resources: {}}\n")
    assert main(["--space", "smoke", "--data", str(data), "--plan", str(bad)]) == 2
    assert "odd.yaml: available_node_types.w: instance type 'x9.huge' unknown to the plan" in capsys.readouterr().err
    with pytest.raises(PlanError):
        from study.plan import node_types
        node_types(tmp_path / "absent.yaml")
