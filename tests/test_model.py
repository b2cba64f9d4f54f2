import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.original_stgcn import OriginalSTGCN, original_graph
from model import (
    NTU_RGBD_25,
    OPENPOSE_18,
    STGCN,
    CheckpointError,
    ModelConfig,
    adjacency_partitions,
    count_parameters,
    load_original_checkpoint,
)
from training.config import CPU_PROFILE, from_dict


@pytest.mark.parametrize("strategy,k", [("uniform", 1), ("distance", 2), ("spatial", 3)])
def test_partitions_equal_the_original_construction(strategy, k):
    ours = adjacency_partitions(OPENPOSE_18, strategy)
    assert ours.shape == (k, 18, 18)
    np.testing.assert_allclose(ours, original_graph(strategy), atol=1e-7)


@pytest.mark.parametrize("strategy", ["uniform", "distance", "spatial"])
def test_partitions_sum_to_a_column_normalised_adjacency(strategy):
    for layout in (OPENPOSE_18, NTU_RGBD_25):
        total = adjacency_partitions(layout, strategy).sum(axis=0)
        np.testing.assert_allclose(total.sum(axis=0), np.ones(layout.num_joints), atol=1e-6)
        assert (total > 0).sum() == layout.num_joints + 2 * len(layout.bones)


def test_spatial_partition_puts_the_neck_root_and_its_neighbours_by_distance_to_centre():
    a = adjacency_partitions(OPENPOSE_18, "spatial")
    neck, nose, r_shoulder = 1, 0, 2
    assert a[0, neck, neck] > 0 and a[0, nose, nose] > 0  # self links: root partition
    assert a[1, r_shoulder, neck] > 0  # shoulder is farther from the centre than the neck
    assert a[2, neck, r_shoulder] > 0  # the neck is nearer to the centre than the shoulder


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="unknown partition strategy 'star'"):
        adjacency_partitions(OPENPOSE_18, "star")


@pytest.mark.parametrize("classes,expected", [(400, 3_177_140), (30, 3_082_050)])
def test_paper_shape_parameter_count(classes, expected):
    assert count_parameters(STGCN(ModelConfig(num_classes=classes))) == expected


def test_cpu_sized_variant_is_labelled_and_smaller():
    cpu = from_dict(CPU_PROFILE)
    assert cpu.model_variant == "cpu-sized (width x0.125, frame stride 3)" and from_dict({}).model_variant == "paper"
    assert count_parameters(STGCN(ModelConfig(num_classes=30, width=cpu.width))) < 100_000


def _randomised_original(num_class=400) -> OriginalSTGCN:
    torch.manual_seed(0)
    net = OriginalSTGCN(num_class=num_class)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name == "A" or name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
            else:
                tensor.normal_(0.0, 0.1 if "weight" in name else 0.05)
            if name.startswith("edge_importance"):
                tensor.uniform_(0.5, 1.5)
    return net


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_loaded_original_checkpoint_gives_the_original_outputs(tmp_path, mode):
    original = _randomised_original()
    path = tmp_path / "st_gcn.kinetics.pt"
    torch.save(original.state_dict(), path)
    ours = load_original_checkpoint(path)
    assert ours.config.num_classes == 400 and ours.config.strategy == "spatial"
    getattr(original, mode)()
    getattr(ours, mode)()
    x = torch.randn(2, 3, 32, 18, 2)
    with torch.no_grad():
        np.testing.assert_allclose(ours(x).numpy(), original(x).numpy(), rtol=1e-4, atol=1e-4)


def test_checkpoint_gets_a_new_head_for_fine_tuning_on_a_subset(tmp_path):
    original = _randomised_original()
    path = tmp_path / "st_gcn.kinetics.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in original.state_dict().items()}}, path)
    ours = load_original_checkpoint(path, num_classes=30).eval()
    original.eval()
    x = torch.randn(1, 3, 16, 18, 2)
    assert ours(x).shape == (1, 30)
    with torch.no_grad():
        assert ours.features(x).shape == (1, 256)
    backbone = {k: v for k, v in ours.state_dict().items() if not k.startswith("fcn.")}
    assert all(torch.equal(v, original.state_dict()[k]) for k, v in backbone.items())  # every backbone tensor
    assert ours.fcn.weight.shape == (30, 256, 1, 1) and ours.config.num_classes == 30  # a head sized to the subset
    assert not torch.allclose(ours.fcn.weight, original.fcn.weight[:30])  # and new, not the file's first 30 rows


def test_foreign_checkpoint_error_lists_missing_keys(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match=r"resnet\.pt: not an ST-GCN checkpoint; missing keys: fcn\.weight"):
        load_original_checkpoint(path)


def test_checkpoint_with_unexpected_keys_names_them(tmp_path):
    state = _randomised_original(num_class=30).state_dict()
    state["extra.head.weight"] = torch.zeros(2)
    del state["st_gcn_networks.9.tcn.3.bias"]
    path = tmp_path / "odd.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"missing: \['st_gcn_networks\.9\.tcn\.3\.bias'\]; "
                                              r"unexpected: \['extra\.head\.weight'\]"):
        load_original_checkpoint(path)


def test_unreadable_or_absent_checkpoint_is_named(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="junk.pt: not a readable PyTorch checkpoint"):
        load_original_checkpoint(junk)
    with pytest.raises(CheckpointError, match="nowhere.pt: no such checkpoint file"):
        load_original_checkpoint(tmp_path / "nowhere.pt")


def test_training_gradients_equal_the_original_ones():
    """In float64, so that what is compared is the arithmetic, not float32 rounding amplified by batch norm."""
    original = _randomised_original(num_class=10).double().train()
    ours = STGCN(ModelConfig(num_classes=10))
    ours.load_state_dict(original.state_dict())
    ours = ours.to(torch.float64, memory_format=torch.channels_last).train()  # laid out as the trainer runs it
    x, y = torch.randn(2, 3, 32, 18, 2, dtype=torch.float64), torch.tensor([1, 7])
    for net in (original, ours):
        F.cross_entropy(net(x), y).backward()
    theirs = dict(original.named_parameters())
    for name, parameter in ours.named_parameters():
        np.testing.assert_allclose(parameter.grad.numpy(), theirs[name].grad.numpy(), rtol=1e-7, atol=1e-10,
                                   err_msg=name)


def test_a_checkpoint_in_our_format_loads_into_the_authors_network_unchanged(tmp_path):
    """What study.pretrain writes is the network's state_dict: for the paper shape, the authors' names and shapes."""
    ours = STGCN(ModelConfig(num_classes=10))
    path = tmp_path / "pretrained.pt"
    torch.save(ours.state_dict(), path)
    theirs = OriginalSTGCN(num_class=10)
    theirs.load_state_dict(torch.load(path, weights_only=True), strict=True)
    x = torch.randn(2, 3, 32, 18, 2)
    with torch.no_grad():
        np.testing.assert_allclose(theirs.eval()(x).numpy(), ours.eval()(x).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("strategy", ["uniform", "distance", "spatial"])
@pytest.mark.parametrize("width", [0.125, 1.0])
def test_the_graph_contraction_chosen_by_shape_gives_todays_outputs_and_gradients(strategy, width):
    """The dense contraction the narrow layers use and the factored one (today's, kept for wide layers) are the same
    arithmetic: in float64 the outputs and every parameter's gradient agree, at the CPU-sized and the paper width."""
    from model.stgcn import GraphConv
    torch.manual_seed(0)
    chosen = STGCN(ModelConfig(num_classes=10, width=width, strategy=strategy)).double()
    factored = STGCN(ModelConfig(num_classes=10, width=width, strategy=strategy)).double()
    factored.load_state_dict(chosen.state_dict())
    layers = [m for m in factored.modules() if isinstance(m, GraphConv)]
    # the dense form where few channels meet: at the paper's width only the first block (3 input channels); at the
    # CPU-sized width up to 16 -> 32 channels on AVX2, up to 8 -> 16 with AVX-512 (model.stgcn's measured crossover)
    narrow = {"AVX512": 5}.get(torch.backends.cpu.get_cpu_capability(), 8) if width < 1 else 1
    assert [m.dense for m in layers] == [True] * narrow + [False] * (10 - narrow)
    for layer in layers:
        layer.dense = False
    with torch.no_grad():
        for p in chosen.edge_importance:
            p.uniform_(0.5, 1.5)
        for p, q in zip(factored.edge_importance, chosen.edge_importance):
            p.copy_(q)
    x, y = torch.randn(2, 3, 16, 18, 2, dtype=torch.float64), torch.tensor([1, 7])
    outputs = []
    for net in (chosen, factored):
        net = net.to(memory_format=torch.channels_last).train()
        out = net(x)
        F.cross_entropy(out, y).backward()
        outputs.append(out.detach().numpy())
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-9, atol=1e-12)
    theirs = dict(factored.named_parameters())
    for name, parameter in chosen.named_parameters():
        np.testing.assert_allclose(parameter.grad.numpy(), theirs[name].grad.numpy(), rtol=1e-7, atol=1e-10,
                                   err_msg=name)
