from pathlib import Path

import optuna
import pytest

from study.spaces import SPACES_DIR, SpaceError, load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)
SHIPPED = ("sgd_lr", "optimizer", "batch_size", "scheduler", "full", "smoke", "data_budget", "pretrained")


def _sample(space, count=12, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    samples = []
    for _ in range(count):
        trial = study.ask()
        space.define_by_run(trial)
        samples.append(trial.params)
        study.tell(trial, 0.0)
    return samples


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_space_loads_and_samples_valid_configs(name):
    space = load_space(name)
    assert (SPACES_DIR / f"{name}.yaml").is_file() and space.description
    for sample in _sample(space, 6):
        config = space.to_config(sample, cpu=True)
        assert config.model_variant.startswith("cpu-sized")
        assert space.to_config(sample, cpu=False).model_variant == "paper"


def test_conditional_parameters_follow_their_parent():
    samples = _sample(load_space("optimizer"), 30)
    assert {s["optimizer"] for s in samples} == {"sgd", "adam", "adamw"}
    for s in samples:
        assert ("momentum" in s) == ("nesterov" in s) == (s["optimizer"] == "sgd")
        assert ("beta1" in s) == ("beta2" in s) == (s["optimizer"] != "sgd")
    for s in _sample(load_space("scheduler"), 30):
        assert ("gamma" in s) == (s["scheduler"] == "step")
        assert ("plateau_patience" in s) == (s["scheduler"] == "plateau")


def test_paper_recipe_is_a_point_of_the_space():
    space = load_space("full")
    point = space.paper_point(cpu=False)
    assert point["optimizer"] == "sgd" and point["lr"] == 0.1 and point["nesterov"] is True
    assert point["batch_size"] == 256 and point["scheduler"] == "step" and "beta1" not in point
    assert space.paper_point(cpu=True)["batch_size"] == 16  # the CPU profile's 8, nearest in the range 16..256
    config = space.to_config(point, cpu=False)
    assert (config.weight_decay, config.milestones) == (1e-4, (20, 30, 40))


def test_linear_scaling_switch_scales_lr_by_batch():
    space = load_space("batch_size")
    scaled = space.to_config({"batch_size": 64, "lr": 0.1, "linear_scaling": True}, cpu=True)
    plain = space.to_config({"batch_size": 64, "lr": 0.1, "linear_scaling": False}, cpu=True)
    assert scaled.lr == pytest.approx(0.025) and plain.lr == 0.1


GOOD = "params:\n  lr: {type: loguniform, low: 1.0e-4, high: 1.0}\n"


@pytest.mark.parametrize("text,message", [
    ("trails: 3\n" + GOOD, "top level: unknown key\\(s\\) trails"),
    ("params:\n  lr: {type: loguniform, low: 1.0, high: 1.0e-4}\n", "params.lr: empty or inverted range"),
    ("params:\n  lr: {type: uniform, low: 0.1, high: 0.1}\n", "params.lr: empty or inverted range"),
    ("params:\n  lr: {type: loguniform, low: 0, high: 1}\n", "params.lr: a log range cannot touch 0"),
    ("params:\n  momentum: {type: uniform, low: 0.5, high: 0.9, when: {optimiser: sgd}}\n",
     "params.momentum.when: parent 'optimiser' is neither a parameter defined above nor a config field"),
    ("params:\n  learning_rate: {type: uniform, low: 0.1, high: 0.2}\n", "params.learning_rate: not a config field"),
    ("params:\n  lr: {type: gaussian, low: 0.1, high: 0.2}\n", "params.lr.type: 'gaussian' is not a parameter type; one of"),
    ("params:\n  lr: {type: uniform, low: 0.1}\n", "params.lr: type uniform needs high"),
    ("params:\n  optimizer: {type: choice, values: []}\n", "params.optimizer.values: must be a non-empty list"),
    ("subsets: [kinetics-700]\n" + GOOD, "subsets: unknown subset\\(s\\) kinetics-700"),
    ("asha: {grace: 1}\n" + GOOD, "asha: unknown key\\(s\\) grace"),
    ("base: {optimizer: lion}\n" + GOOD, "base: 'optimizer' is 'lion'"),
    ("params: {}\n", "params: no parameter to search"),
    ("params:\n  batch_size: {type: pow2, low: 12, high: 64}\n", "pow2 bounds must be powers of two"),
    ("params:\n  batch_size: {type: pow2, low: 1, high: 64}\n", "pow2 low must be at least 2"),
    ("params:\n  optimizer: {type: choice, values: [sgd, adam]}\n"
     "  beta1: {type: uniform, low: 0.8, high: 0.9, when: {optimizer: [adam, adamw]}}\n",
     "params.beta1.when: 'optimizer' can never be 'adamw' \\(it takes 'sgd', 'adam'\\)"),
    ("base: {optimizer: adam}\nparams:\n  momentum: {type: uniform, low: 0.5, high: 0.9, when: {optimizer: sgd}}\n",
     "params.momentum.when: 'optimizer' can never be 'sgd'"),
    ("params:\n  lr: {type: loguniform, low: 1.0e-4, high: 1.0}\n"
     "  momentum: {type: uniform, low: 0.5, high: 0.9, when: {lr: 0.1}}\n", "parent 'lr' is a range"),
    ("cpu_profile: {epochs: 2, scheduler: none}\nasha: {grace_period: 2}\n" + GOOD,
     "asha.grace_period: grace period 2 is not below the cpu_profile epochs \\(2\\)"),
    ("asha: {metric: val_top5}\n" + GOOD, "asha.metric: unknown metric 'val_top5'; choose one of val_loss, val_top1"),
    ("sampler: grid\n" + GOOD, "sampler: unknown sampler 'grid'; choose one of tpe, qmc, random"),
    ("report_budget: last\n" + GOOD, "report_budget: must be an epoch \\(an integer >= 1\\), got 'last'"),
    ("resources: {cpus: 1}\n" + GOOD, "resources: unknown key\\(s\\) cpus; allowed: cpu, paper"),
    ("resources: {paper: {gpus: -1}}\n" + GOOD, "resources.paper.gpus: must be a number > 0"),
    ("resources: {paper: {kinetics-392: {tpus: 1}}}\n" + GOOD, "resources.paper.kinetics-392: unknown key\\(s\\) tpus"),
])
def test_invalid_space_files_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(SpaceError, match=f"mine.yaml: .*{message}"):
        load_space(path)


def test_unknown_space_name_lists_the_known_ones():
    with pytest.raises(SpaceError, match="no such search space; known spaces: batch_size, data_budget, full, optimizer"):
        load_space("lr_only")


def test_resources_come_per_profile_and_subset_with_defaults():
    space = load_space("sgd_lr")
    assert space.trial_resources(cpu=True, subset="kinetics-392") == {"cpu": 1.0, "gpu": 0.0}
    # the paper profile's GPU share is sized from the step's memory and the cluster's cards (tests/test_plan.py)
    assert space.trial_resources(cpu=False, subset="kinetics-motion") == {"cpu": 4.0, "gpu": None}
    assert space.trial_resources(cpu=False, subset="kinetics-392") == {"cpu": 4.0, "gpu": None}


def test_samplers_by_space_and_a_start_up_that_fits_the_budget():
    kinds = {name: load_space(name).sampler for name in SHIPPED}
    assert kinds == {"sgd_lr": "qmc", "batch_size": "qmc", "scheduler": "qmc", "optimizer": "tpe", "full": "tpe",
                     "smoke": "tpe", "data_budget": "qmc", "pretrained": "random"}
    assert load_space("full").startup_trials == 10 and load_space("optimizer").startup_trials == 6
    assert load_space("smoke").startup_trials == 1


def test_relative_paths_are_made_absolute_once_and_kept_in_the_studys_copy(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: {classes_file: lists/ten.txt}\nparams:\n  pretrained: {type: choice, "
                    "values: [null, ~/ckpt.pt]}\n")
    space = load_space(path, paths_relative_to=tmp_path)
    assert space.base["classes_file"] == str(tmp_path / "lists" / "ten.txt")
    assert space.params[0].values == (None, str(Path.home() / "ckpt.pt"))
    copy = tmp_path / "copy" / "space.yaml"
    copy.parent.mkdir()
    copy.write_text(space.dump())
    again = load_space(copy, paths_relative_to=tmp_path / "elsewhere")
    assert again.name == "mine" and again.base == space.base and again.params == space.params
