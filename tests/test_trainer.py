import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from kinetics.dataset import ConvertedDataset
from kinetics.subsets import KINETICS_MOTION
from model import STGCN, CheckpointError, ModelConfig
from study.train import main as train_main
from training.config import CPU_PROFILE, ConfigError, from_dict, load
from training.experiment import Experiment, describe_epoch
from training.pretrain import pretrain
from training.schedule import EpochSchedule
from training.trainer import Trainer, loader_workers_for

FIVE_CLASSES = ["squat", "push up", "tai chi", "skipping rope", "pull ups"]


@pytest.fixture(scope="module")
def dataset(synthetic, tmp_path_factory):
    """The session's set, with a class list of five kinetics-motion classes beside it."""
    root = tmp_path_factory.mktemp("trainer_data")
    (root / "converted").symlink_to(synthetic / "converted")
    (root / "five.txt").write_text("\n".join(FIVE_CLASSES))
    return root


def _config(dataset_root, **changes):
    base = {**CPU_PROFILE, "data": str(dataset_root / "converted"), "classes_file": str(dataset_root / "five.txt"),
            "batch_size": 8, "epochs": 3, "scheduler": "none", "optimizer": "adam", "lr": 3e-3,
            "sample_images": 0}
    return from_dict({**base, **changes}, source="test")


def test_short_cpu_training_learns_well_above_chance(dataset):
    trainer = Trainer(_config(dataset, epochs=10), ConvertedDataset(dataset / "converted"))
    while not trainer.finished:
        trainer.run_epoch()
    best = max(m["val_top1"] for m in trainer.history)
    assert trainer.num_classes == 5
    assert best >= 0.45, f"val top-1 {best:.2f} should be well above chance (0.20)"
    assert trainer.history[-1]["train_loss"] < trainer.history[0]["train_loss"]


def test_far_too_low_learning_rate_stays_near_chance(dataset):
    trainer = Trainer(_config(dataset, epochs=5, lr=1e-7), ConvertedDataset(dataset / "converted"))
    while not trainer.finished:
        trainer.run_epoch()
    best = max(m["val_top1"] for m in trainer.history)
    assert best <= 0.35, f"val top-1 {best:.2f} with lr 1e-7 should stay near chance (0.20)"


def test_resumed_run_gives_the_same_epochs_as_an_uninterrupted_one(dataset):
    data = ConvertedDataset(dataset / "converted")
    config = _config(dataset, epochs=3, optimizer="sgd", lr=0.05, scheduler="step", milestones=[2])
    straight = Trainer(config, data)
    while not straight.finished:
        straight.run_epoch()
    first = Trainer(config, data)
    first.run_epoch()
    first.run_epoch()
    state = first.state_dict()
    resumed = Trainer(config, data)
    resumed.load_state_dict(state)
    resumed.run_epoch()
    for key in ("train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "epoch_lr"):
        assert [m[key] for m in resumed.history] == pytest.approx([m[key] for m in straight.history], rel=1e-6)


def test_epochs_not_validated_leave_the_training_and_the_validated_epochs_unchanged(dataset):
    """eval_interval 3 over 4 epochs, epoch 2 named (an ASHA rung): validated after 2, 3 (the interval) and 4 (the
    last), not after 1; every training figure and every validated epoch's scores as when every epoch is validated. A
    plateau schedule steps on the validation loss, so it validates every epoch whatever the interval."""
    data = ConvertedDataset(dataset / "converted")
    config = _config(dataset, epochs=4, optimizer="sgd", lr=0.05)
    every = Trainer(config, data)
    sparse = Trainer(_config(dataset, epochs=4, optimizer="sgd", lr=0.05, eval_interval=3), data, validated_after=(2,))
    for trainer in (every, sparse):
        while not trainer.finished:
            trainer.run_epoch()
    assert [not math.isnan(m["val_top1"]) for m in sparse.history] == [False, True, True, True]
    for mine, theirs in zip(sparse.history, every.history):
        for key in ("train_loss", "train_top1", "epoch_lr"):
            assert mine[key] == theirs[key]
        if mine["epoch"] > 1:
            for key in ("val_loss", "val_top1", "val_top5", "motion_top1"):
                assert mine[key] == pytest.approx(theirs[key], rel=1e-6, nan_ok=True)
    plateau = Trainer(_config(dataset, epochs=2, scheduler="plateau", eval_interval=5), data)
    assert [plateau.validates(epoch) for epoch in (1, 2)] == [True, True]
    assert "val not scored this epoch" in describe_epoch(sparse.history[0])


def test_persistent_loader_workers_give_the_same_epochs_as_loading_in_process(dataset):
    """Two epochs: the workers start once and are kept, and the second epoch's plan is still the second's."""
    data = ConvertedDataset(dataset / "converted")
    runs = []
    for workers in (0, 2):
        trainer = Trainer(_config(dataset, epochs=2, loader_workers=workers), data)
        assert trainer.loader_workers == workers
        assert trainer.train_loader.loader.persistent_workers == (workers > 0)
        assert not trainer.train_loader.loader.pin_memory  # on the CPU; on CUDA the batches are pinned
        runs.append([trainer.run_epoch(), trainer.run_epoch()])
    for one, other in zip(*runs):
        for key in ("train_loss", "train_top1", "val_loss", "val_top1"):
            assert other[key] == pytest.approx(one[key], rel=1e-6)
    assert runs[0][0]["train_loss"] != runs[0][1]["train_loss"]


def test_loader_workers_default_to_none_on_cpu_and_some_on_cuda():
    assert from_dict({}).loader_workers is None
    assert loader_workers_for(None, torch.device("cpu")) == 0
    assert 1 <= loader_workers_for(None, torch.device("cuda")) <= 4
    assert loader_workers_for(3, torch.device("cpu")) == 3


def test_divergence_stops_the_run_and_is_recorded(dataset):
    trainer = Trainer(_config(dataset, optimizer="sgd", lr=1e6, momentum=0.9), ConvertedDataset(dataset / "converted"))
    while not trainer.finished:
        trainer.run_epoch()
    last = trainer.history[-1]
    assert trainer.diverged and last["diverged"] and math.isnan(last["train_loss"])
    assert len(trainer.history) < 3


def test_schedules_follow_their_definitions():
    step = EpochSchedule(from_dict({"scheduler": "step", "lr": 0.1, "milestones": [2, 4], "epochs": 6}))
    assert [round(step.lr(e), 6) for e in range(6)] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    warm = EpochSchedule(from_dict({"scheduler": "cosine", "lr": 1.0, "epochs": 5, "warmup_epochs": 1}))
    assert warm.lr(0) == 0.5 and warm.lr(1) == 1.0 and warm.lr(4) < 0.2
    plateau = EpochSchedule(from_dict({"scheduler": "plateau", "lr": 1.0, "plateau_patience": 1,
                                       "plateau_factor": 0.5}))
    for epoch, loss in enumerate([1.0, 1.1, 1.2, 0.9]):
        plateau.observe(epoch, loss)
    assert plateau.lr(4) == 0.5


def test_standalone_cli_writes_the_experiment_folder(dataset, tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps({**_config(dataset, epochs=2, sample_images=2).to_dict()}))
    assert train_main(["--config", str(config), "--out", str(tmp_path / "runs"), "--index", "3"]) == 0
    (folder,) = (tmp_path / "runs").iterdir()
    parts = folder.name.split("_")
    assert parts[0] == "3" and parts[1] == "5" and folder.name.endswith("_kinetics_motion_5_From_Scratch")
    assert (folder / "log" / "train.log").read_text().count("epoch ") >= 2
    info = json.loads((folder / "log" / "config.json").read_text())
    assert info["seed"] == 0 and info["data_source"] == "synthetic"
    assert info["class_names"] == sorted(FIVE_CLASSES, key=KINETICS_MOTION.index)  # dataset order
    assert "cpu-sized" in info["model_variant"]
    assert (folder / "log" / "source" / "model" / "stgcn.py").is_file()
    epochs = pd.read_csv(folder / "save_values_csv" / "epochs.csv")
    assert list(epochs["epoch"]) == [1, 2] and (epochs["inference_ms_per_clip"] > 0).all()
    for png in ("matplotlib_graphs/accuracy.png", "matplotlib_graphs/loss.png", "images_independant/sample_0.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "best val top-1" in capsys.readouterr().out

    # Resuming a finished run trains nothing more and keeps its epochs; --quiet says nothing but warnings.
    assert train_main(["--config", str(config), "--resume", str(folder), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert len(pd.read_csv(folder / "save_values_csv" / "epochs.csv")) == 2


def test_resuming_a_standalone_run_continues_in_its_own_folder(dataset, tmp_path, capsys):
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(FIVE_CLASSES))
    config = _config(dataset, epochs=3, classes_file=str(classes))
    config_file = tmp_path / "run.yaml"
    config_file.write_text(json.dumps(config.to_dict()))
    runs = tmp_path / "runs"
    interrupted = Experiment(config, ConvertedDataset(dataset / "converted"), runs, index=3)
    for _ in range(2):  # what the CLI does per epoch, then the run is cut off
        interrupted.step()
        interrupted.save_checkpoint(interrupted.folder.path)
    folder = interrupted.folder.path
    assert train_main(["--config", str(config_file), "--resume", str(folder)]) == 0  # no --index
    assert [p.name for p in runs.iterdir()] == [folder.name]
    assert pd.read_csv(folder / "save_values_csv" / "epochs.csv")["epoch"].tolist() == [1, 2, 3]
    assert "after epoch 2" in (folder / "log" / "train.log").read_text()

    written = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    config_file.write_text(json.dumps({**config.to_dict(), "lr": 0.5}))
    capsys.readouterr()
    assert train_main(["--config", str(config_file), "--resume", str(folder)]) == 2
    assert "other values (lr=0.003)" in capsys.readouterr().err
    config_file.write_text(json.dumps(config.to_dict()))
    classes.write_text("\n".join(FIVE_CLASSES[:4]))  # the same config, but its class list changed
    assert train_main(["--config", str(config_file), "--resume", str(folder)]) == 2
    assert "would write folder 3_4_" in capsys.readouterr().err
    assert [p.name for p in runs.iterdir()] == [folder.name]
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == written  # refused before any write


@pytest.mark.parametrize("values,message", [
    ({"optimiser": "sgd"}, "unknown field\\(s\\) optimiser"),
    ({"optimizer": "lion"}, "'optimizer' is 'lion'; choose one of sgd, adam, adamw"),
    ({"lr": -1}, "'lr' must be a positive number"),
    ({"lr": "fast"}, "field 'lr' has 'fast', expected float"),
    ({"batch_size": 1}, "'batch_size' must be >= 2"),
    ({"milestones": [30, 20]}, "'milestones' must be increasing epochs in \\[1, 50\\]"),
    ({"warmup_epochs": 50}, "'warmup_epochs' must be in \\[0, epochs\\)"),
    ({"beta2": 1.5}, "'beta2' must be in \\(0, 1\\)"),
    ({"loader_workers": -1}, "'loader_workers' must be >= 0"),
    ({"eval_interval": 0}, "'eval_interval' must be >= 1"),
])
def test_bad_config_values_name_the_field(values, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(values, source="my.yaml")


def test_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [unclosed")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load(bad)
    with pytest.raises(ConfigError, match="absent.yaml: config file not found"):
        load(tmp_path / "absent.yaml")


def test_paper_recipe_is_the_default():
    config = from_dict({})
    assert (config.optimizer, config.lr, config.weight_decay, config.batch_size, config.nesterov) == \
        ("sgd", 0.1, 1e-4, 256, True)
    assert config.milestones == (20, 30, 40) and config.epochs == 50 and config.model_variant == "paper"
    assert np.isclose(from_dict(CPU_PROFILE).width, 0.125)


@pytest.fixture(scope="module")
def checkpoint(dataset, tmp_path_factory):
    """The CPU-sized network pretrained for four epochs on the session set's classes outside kinetics-motion."""
    config = _config(dataset, classes_file=None, subset="kinetics-392", epochs=4, optimizer="sgd", lr=0.03)
    return pretrain(config, tmp_path_factory.mktemp("pretrained") / "synthetic.pt", echo=lambda line: None)


def test_a_fine_tuned_run_starts_from_the_checkpoints_backbone_with_a_new_head(dataset, checkpoint):
    saved = torch.load(checkpoint, weights_only=True)
    trainer = Trainer(_config(dataset, pretrained=str(checkpoint)), ConvertedDataset(dataset / "converted"))
    state = trainer.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in saved.items() if not k.startswith("fcn."))
    assert saved["fcn.weight"].shape[0] == 10 and state["fcn.weight"].shape[0] == 5  # sized to the subset
    assert all(p.requires_grad for p in trainer.model.parameters())


def test_frozen_epochs_train_only_the_head(dataset, checkpoint):
    trainer = Trainer(_config(dataset, pretrained=str(checkpoint), freeze_epochs=1, epochs=2, optimizer="sgd",
                              lr=0.05), ConvertedDataset(dataset / "converted"))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run_epoch()
    after = trainer.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items() if not k.startswith("fcn."))
    assert not torch.equal(after["fcn.weight"], before["fcn.weight"])
    trainer.run_epoch()  # the second epoch trains everything
    assert not torch.equal(trainer.model.state_dict()["st_gcn_networks.0.gcn.conv.weight"],
                           before["st_gcn_networks.0.gcn.conv.weight"])


def test_a_checkpoint_of_another_shape_is_refused_naming_the_file_and_the_mismatch(dataset, checkpoint, tmp_path):
    data = ConvertedDataset(dataset / "converted")
    with pytest.raises(CheckpointError, match=r"synthetic.pt: its network has width 0.125, this run's has 0.25"):
        Trainer(_config(dataset, pretrained=str(checkpoint), width=0.25), data)
    ntu = tmp_path / "ntu.pt"
    torch.save(STGCN(ModelConfig(num_classes=60, layout="ntu-rgb+d", width=0.125)).state_dict(), ntu)
    with pytest.raises(CheckpointError, match=r"ntu.pt: its network has layout 'ntu-rgb\+d', this run's has 'openpose'"):
        Trainer(_config(dataset, pretrained=str(ntu)), data)


def test_on_synthetic_data_fine_tuning_beats_training_from_scratch_at_equal_epochs(dataset, checkpoint):
    """Two epochs on five kinetics-motion classes, seeds 0 and 1: every fine-tuned run above every one from scratch."""
    data = ConvertedDataset(dataset / "converted")
    scores = {"scratch": [], "fine-tuned": []}
    for name, extra in (("scratch", {}), ("fine-tuned", {"pretrained": str(checkpoint)})):
        for seed in (0, 1):
            trainer = Trainer(_config(dataset, epochs=2, optimizer="sgd", lr=0.03, seed=seed, **extra), data)
            while not trainer.finished:
                trainer.run_epoch()
            scores[name].append(trainer.history[-1]["val_top1"])
    assert min(scores["fine-tuned"]) > max(scores["scratch"]), scores


def test_a_trial_draws_its_figures_where_the_epoch_may_be_its_last(dataset, tmp_path):
    """A study's trial (not watched) draws its sample predictions after the epochs ASHA may stop it at and at its end,
    never after its first epoch (an untrained network's guesses), and its curves only at its end; a watched run
    draws its samples after its first epoch too and its curves after every epoch."""
    data = ConvertedDataset(dataset / "converted")
    config = _config(dataset, epochs=3, sample_images=1)
    drawn = {}
    for watched in (False, True):
        experiment = Experiment(config, data, tmp_path / str(watched), watched=watched, may_end_after=(2,))
        sample = experiment.folder.path / "images_independant" / "sample_0.png"
        curve = experiment.folder.path / "matplotlib_graphs" / "accuracy.png"
        drawn[watched] = []
        while not experiment.finished:
            for png in (sample, curve):
                png.unlink(missing_ok=True)
            epoch = experiment.step()["epoch"]
            drawn[watched] += [(epoch, png.parent.name) for png in (sample, curve) if png.exists()]
    assert drawn[False] == [(2, "images_independant"), (3, "images_independant"), (3, "matplotlib_graphs")]
    assert drawn[True] == [(1, "images_independant"), (1, "matplotlib_graphs"), (2, "images_independant"),
                           (2, "matplotlib_graphs"), (3, "images_independant"), (3, "matplotlib_graphs")]
