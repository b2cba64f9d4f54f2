"""cluster.yaml and cluster-local.yaml pass the checks `ray up` runs on a config before it starts anything
(Ray's own defaults merge and JSON schema), and a typo in them fails here rather than on a real cluster."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ("cluster.yaml", "cluster-local.yaml")


def _checked(config: dict) -> dict:
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


@pytest.mark.parametrize("name", CONFIGS)
def test_cluster_config_passes_rays_validation(name):
    prepared = _checked(yaml.safe_load((ROOT / name).read_text()))
    assert prepared["cluster_name"].startswith("stgcn-study")


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("typo", [("max_worker", 4), ("idle_timeout_minute", 5), ("setup_command", [])])
def test_a_misspelled_top_level_key_is_rejected(name, typo):
    config = yaml.safe_load((ROOT / name).read_text())
    config[typo[0]] = typo[1]
    with pytest.raises(jsonschema.ValidationError, match=typo[0]):
        _checked(config)


def test_a_misspelled_node_type_field_is_rejected():
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    config["available_node_types"]["gpu_small"]["min_worker"] = 1
    with pytest.raises(jsonschema.ValidationError, match="min_worker"):
        _checked(config)


def test_aws_config_keeps_trials_off_the_head_and_installs_the_project_on_every_node():
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    assert config["available_node_types"]["head"]["resources"] == {"CPU": 0}
    assert any("pip install" in c and "stgcn-study" in c for c in config["setup_commands"])
    assert "." in config["file_mounts"].values()
    assert all("--dashboard-host=127.0.0.1" in c for c in config["head_start_ray_commands"] if "--head" in c)
