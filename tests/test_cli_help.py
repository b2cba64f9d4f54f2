"""Every command's --help runs and says what the code does; the listing of spaces names every shipped space."""

from __future__ import annotations

import importlib
import re

import pytest

from study.spaces import SPACES_DIR, shipped_spaces
from training.config import CPU_PROFILE

COMMANDS = ("study.run", "study.train", "study.pretrain", "study.watch", "reports.build", "kinetics.__main__")


def help_of(module: str, capsys, *extra: str) -> str:
    with pytest.raises(SystemExit) as ended:
        importlib.import_module(module).main([*extra, "--help"])
    assert ended.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("module", COMMANDS)
def test_every_command_has_help_that_names_itself(module, capsys):
    said = help_of(module, capsys)
    assert said.startswith(f"usage: python -m {module.removesuffix('.__main__')}")


def test_help_says_what_the_code_does(capsys):
    run = " ".join(help_of("study.run", capsys).split())
    assert "side by side in one Tune experiment" in run and "its own Tune experiment" not in run
    assert "3 when the study ran but some trials errored" in run
    train = " ".join(help_of("study.train", capsys).split())
    assert f"{CPU_PROFILE['epochs']} epochs)" in train
    assert "--data /data/kinetics-converted" in train  # a converted dataset, not the raw release
    assert "per-result table" not in " ".join(help_of("reports.build", capsys).split())


def test_list_names_every_shipped_space_with_its_description(capsys):
    from study.run import main
    assert main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [re.split(r"\s+", line, maxsplit=1)[0] for line in lines] == sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))
    assert all(text for _, text in shipped_spaces())


def test_a_misspelled_parameter_type_names_the_value_and_the_allowed_ones(tmp_path):
    from study.spaces import SpaceError, load_space
    space = tmp_path / "typo.yaml"
    space.write_text("params:\n  lr: {type: log-uniform, low: 0.001, high: 0.1}\n")
    allowed = "one of loguniform, uniform, int, pow2, choice"
    with pytest.raises(SpaceError, match=rf"params\.lr\.type: 'log-uniform' is not a parameter type; {allowed}"):
        load_space(space)


def test_the_dashboards_address_comes_with_how_to_get_its_token(monkeypatch):
    from study.driver import ray_line
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    assert ray_line(None, "127.0.0.1:8265") == ("ray: local cluster; dashboard: http://127.0.0.1:8265 (it asks for Ray's "
                                                "token: ray get-auth-token prints it)")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert ray_line("10.0.0.1:6379", "10.0.0.1:8265").endswith("dashboard: http://10.0.0.1:8265")
