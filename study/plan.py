"""What a study will cost on a cluster, before anything starts: ``python -m study.run --space S --data D --plan
cluster.yaml``.

For each subset: the node type its trials land on and how many fit on one node (CPUs, GPUs, and the GPU memory a
step needs at the space's largest batch, model/memory.py), how many run at once under the space's concurrency and
the cluster's node limits, the epochs ASHA is expected to run (every trial to the first rung, 1/rf of them to each
next one), and the GPU-hours and the wall time from a clips/s figure: measured by ``python -m bench.bench_gpu`` (its
JSON, study/gpu_figures.json, when there is one for the card) or else assumed from the card's dense bf16 rate at 30%
of peak for 36.6 GFLOP per clip, and said to be assumed. Whether the node can feed that rate (the training array in
its page cache, or read from its volume) is checked too. A space whose trials fit no node type is refused with why.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from common.files import yaml_problem
from model.memory import GIB, step_memory

GFLOP_PER_CLIP = 36.6  # forward + backward of the paper-shape network at T=150, 2 persons (bench_model's count)
ASSUMED_UTILISATION = 0.30  # of the card's dense bf16 rate, until bench_gpu measured the card
MEMORY_HEADROOM = 0.90  # of a card's memory a trial's share may plan to use
FIGURES = Path(str(resources.files("study"))) / "gpu_figures.json"  # python -m bench.bench_gpu writes it; installed too


@dataclass(frozen=True)
class Card:
    name: str
    memory_gib: float
    bf16_tflops: float  # dense, from the vendor's sheet: an assumption until measured


CARDS = {c.name: c for c in (
    Card("A10G", 24, 70), Card("L4", 24, 121), Card("L40S", 48, 362), Card("A100-40GB", 40, 312),
    Card("A100-80GB", 80, 312), Card("H100", 80, 989), Card("H200", 141, 989), Card("T4", 16, 65))}


@dataclass(frozen=True)
class NodeType:
    name: str
    cpus: float
    gpus: int
    card: Card | None
    memory_gib: float  # host RAM
    volume_mb_s: float  # the root volume's read rate
    max_workers: int
    price: float | None = None  # USD per node-hour
    price_declared: bool = False  # by the cluster file (its label), else the list price assumed


# AWS instance types the plan knows: vCPUs, GPUs, card, host GiB. (gp3 volumes read 125 MB/s unless the node
# config asks for more Throughput.)
INSTANCES = {
    "g5.xlarge": (4, 1, "A10G", 16), "g5.2xlarge": (8, 1, "A10G", 32), "g5.4xlarge": (16, 1, "A10G", 64),
    "g5.8xlarge": (32, 1, "A10G", 128), "g5.12xlarge": (48, 4, "A10G", 192), "g5.24xlarge": (96, 4, "A10G", 384),
    "g5.48xlarge": (192, 8, "A10G", 768), "g6.xlarge": (4, 1, "L4", 16), "g6.12xlarge": (48, 4, "L4", 192),
    "g6e.xlarge": (4, 1, "L40S", 32), "g6e.12xlarge": (48, 4, "L40S", 384),
    "p4d.24xlarge": (96, 8, "A100-40GB", 1152), "p4de.24xlarge": (96, 8, "A100-80GB", 1152),
    "p5.48xlarge": (192, 8, "H100", 2048), "p5e.48xlarge": (192, 8, "H200", 2048),
    "m5.xlarge": (4, 0, None, 16), "m5.2xlarge": (8, 0, None, 32), "m5.4xlarge": (16, 0, None, 64)}
GP3_MB_S = 125
# On-demand list prices (USD per hour, us-east-1, Linux) of the instance types above: an assumption the plan labels,
# used where the cluster file does not declare a node type's price as its label `price-usd-per-hour`.
LIST_PRICES = {"g5.xlarge": 1.006, "g5.2xlarge": 1.212, "g5.4xlarge": 1.624, "g5.8xlarge": 2.448, "g5.12xlarge": 5.672,
               "g5.24xlarge": 8.144, "g5.48xlarge": 16.288, "g6.xlarge": 0.805, "g6.12xlarge": 4.602,
               "g6e.xlarge": 1.861, "g6e.12xlarge": 10.493, "p4d.24xlarge": 32.773, "p4de.24xlarge": 40.966,
               "p5.48xlarge": 98.32, "p5e.48xlarge": 108.0, "m5.xlarge": 0.192, "m5.2xlarge": 0.384,
               "m5.4xlarge": 0.768}
PRICE_LABEL = "price-usd-per-hour"
NODE_START_MIN = 6.0  # ASSUMED: a GPU node from launch to running trials (boot, image pull, setup, data sync)
# Kinetics-skeleton as released (Yan et al.): planned at its average clips per class when no --data is given.
RELEASE_CLIPS = {"train": 240_436, "val": 19_796, "classes": 400}


class PlanError(ValueError):
    """The cluster file cannot be planned for, or the study's trials fit none of its node types."""


def node_types(path: Path) -> list[NodeType]:
    """The node types of a cluster-launcher file that can run trials (the head's, when it offers CPUs too)."""
    try:
        config = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise PlanError(f"{path}: not a readable cluster file ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise PlanError(f"{path}: not a cluster file: not valid YAML ({yaml_problem(exc)})") from exc
    if not isinstance(config, dict) or not ({"provider", "available_node_types"} & set(config)):
        raise PlanError(f"{path}: not a cluster file: a Ray cluster-launcher config has 'provider' and "
                        "'available_node_types' (see cluster.yaml)")
    if config.get("provider", {}).get("type") == "local":
        return [_local_node(path, config)]
    types = []
    for name, spec in (config.get("available_node_types") or {}).items():
        node = spec.get("node_config", {})
        instance = node.get("InstanceType")
        if instance not in INSTANCES:
            raise PlanError(f"{path}: available_node_types.{name}: instance type {instance!r} unknown to the plan; "
                            f"known: {', '.join(INSTANCES)}")
        cpus, gpus, card, memory = INSTANCES[instance]
        declared = spec.get("resources") or {}
        cpus, gpus = declared.get("CPU", cpus), int(declared.get("GPU", gpus))
        volume = max((m.get("Ebs", {}).get("Throughput", GP3_MB_S) for m in node.get("BlockDeviceMappings", [])),
                     default=GP3_MB_S)
        limit = spec.get("max_workers", config.get("max_workers", 1)) if name != config.get("head_node_type") else 1
        declared_price = (spec.get("labels") or {}).get(PRICE_LABEL)
        price = float(declared_price) if declared_price is not None else LIST_PRICES.get(instance)
        if cpus or gpus:
            types.append(NodeType(name, cpus, gpus, CARDS[card] if card and gpus else None, memory, volume, limit,
                                  price, declared_price is not None))
    if not types:
        raise PlanError(f"{path}: no node type offers CPUs or GPUs to trials")
    return types


def _local_node(path: Path, config: dict) -> NodeType:
    """Machines you have: what they offer is what their `ray start` says (--num-cpus, --num-gpus, and the card as
    a custom resource, e.g. --resources='{"card:A10G": 1}')."""
    commands = " ".join(config.get("worker_start_ray_commands") or [])
    words = shlex.split(commands)
    flags = {w.split("=", 1)[0]: w.split("=", 1)[1] for w in words if w.startswith("--") and "=" in w}
    if "--num-cpus" not in flags:
        raise PlanError(f"{path}: worker_start_ray_commands: say what a machine offers with --num-cpus=N "
                        "(and --num-gpus=G --resources='{\"card:NAME\": 1}' for GPUs), so the plan can size trials")
    gpus = int(flags.get("--num-gpus", 0))
    cards = [name for name in json.loads(flags.get("--resources", "{}")) if name.startswith("card:")]
    card = cards[0].split(":", 1)[1] if cards else None
    if gpus and card not in CARDS:
        raise PlanError(f"{path}: worker_start_ray_commands: --num-gpus={gpus} but no known card named in "
                        f"--resources (card:NAME, NAME one of {', '.join(CARDS)})")
    memory = float(flags.get("--memory", 0)) / GIB or 64.0
    return NodeType("local.cluster.node", float(flags["--num-cpus"]), gpus, CARDS.get(card), memory, GP3_MB_S,
                    len(config.get("provider", {}).get("worker_ips", [])) or 1)


def gpu_share(needed_bytes: int, card: Card) -> float | None:
    """The largest share of ``card`` (1, 1/2, 1/4) several trials can take while each has the memory it needs;
    None when not even a whole card holds one trial."""
    for share in (0.25, 0.5, 1.0):
        if needed_bytes <= MEMORY_HEADROOM * card.memory_gib * GIB * share:
            return share
    return None


def card_named(accelerator: str) -> Card | None:
    """The card of a Ray accelerator type ("A10G", "H100", "A100-80G", ...); an A100 of unknown size counts as the
    40 GB one (the smaller, so a share never overcommits memory)."""
    name = accelerator.upper()
    if name.startswith("A100"):
        return CARDS["A100-80GB"] if "80" in name else CARDS["A100-40GB"]
    return next((card for key, card in CARDS.items() if name.startswith(key.upper())), None)


def share_on_cluster(needed_bytes: int, accelerators: list[str]) -> tuple[float, str]:
    """The GPU share of a trial whose step needs ``needed_bytes``, on the cards the cluster shows now, and why."""
    cards = [card for card in map(card_named, accelerators) if card is not None]
    if not cards:
        return 1.0, ("a whole GPU per trial: no card of a known size is up yet (an autoscaler starts GPU nodes for "
                     "the trials), so the share cannot be sized by memory")
    share = max(gpu_share(needed_bytes, card) or 1.0 for card in cards)  # a trial may land on any of them
    smallest = min(cards, key=lambda card: card.memory_gib)
    return share, (f"a step needs {needed_bytes / GIB:.1f} GiB; on the {smallest.name} ({smallest.memory_gib:g} "
                   f"GiB, the smallest card up) that is a share of {share:g} per trial")


def measured_clips_per_s(card: Card, batch: int) -> float | None:
    """Train clips/s bench_gpu measured on this card at this batch (the nearest batch it measured), if any."""
    if not FIGURES.is_file():
        return None
    figures = json.loads(FIGURES.read_text())
    if card.name.lower() not in figures.get("card", "").lower():
        return None
    rates = {int(b): v for b, v in figures.get("train_clips_per_s", {}).items()}
    return rates[min(rates, key=lambda b: abs(math.log(b / batch)))] if rates else None


def expected_epochs(trials: int, epochs: int, grace: int, reduction: int, early_stopping: bool) -> float:
    """Epochs ASHA is expected to run: every trial to the first rung, 1/rf of them on to each next rung, 1/rf^k of
    them to the last epoch (its asynchronous rule promotes about that share)."""
    if not early_stopping:
        return float(trials * epochs)
    rungs = [grace * reduction ** k for k in range(64) if grace * reduction ** k < epochs] + [epochs]
    total, previous = 0.0, 0
    for k, rung in enumerate(rungs):
        total += trials / reduction ** k * (rung - previous)
        previous = rung
    return total


@dataclass(frozen=True)
class SubsetPlan:
    subset: str
    node: NodeType
    cpus: float
    gpu: float  # share of a card per trial
    per_node: int
    concurrent: int
    capacity: int  # trials the node type's worker limit could run at once
    batch: int
    needed_gib: float
    epochs: float
    clips_per_s: float
    measured: bool
    train_clips: int
    val_clips: int
    feed_clips_per_s: float | None  # what the node's volume can feed when the array does not fit its page cache

    @property
    def rate(self) -> float:
        return min(self.clips_per_s, self.feed_clips_per_s or math.inf)

    @property
    def gpu_hours(self) -> float:
        seconds_per_epoch = self.train_clips / self.rate + self.val_clips / (3 * self.rate)  # eval: forward only
        return self.epochs * seconds_per_epoch * self.gpu / 3600

    @property
    def wall_hours(self) -> float:
        return self.gpu_hours / (self.gpu * self.concurrent) if self.gpu else math.nan

    @property
    def nodes(self) -> int:
        return math.ceil(self.concurrent / self.per_node)

    @property
    def cost(self) -> float | None:
        """USD: the nodes the concurrent trials hold, for the wall time plus their start-up."""
        if self.node.price is None:
            return None
        return self.node.price * self.nodes * (self.wall_hours + NODE_START_MIN / 60)

    def cost_text(self) -> str:
        if self.cost is None:
            return "no price known for this node type (label it price-usd-per-hour in the cluster file)"
        source = "the price the cluster file declares" if self.node.price_declared else \
            "ASSUMED: its on-demand list price in us-east-1"
        return (f"about ${self.cost:,.2f} for {self.nodes} node(s) at ${self.node.price:g}/h ({source}), "
                f"{NODE_START_MIN:g} min of node start-up included (ASSUMED)")

    def lines(self) -> list[str]:
        source = "measured by bench_gpu" if self.measured else (
            f"ASSUMED: {ASSUMED_UTILISATION:.0%} of the {self.node.card.name}'s {self.node.card.bf16_tflops:g} dense "
            f"bf16 TFLOP/s at {GFLOP_PER_CLIP} GFLOP per clip; run bench_gpu on the card to measure it")
        feed = "" if self.feed_clips_per_s is None else (
            f"; the training array does not fit the node's {self.node.memory_gib:g} GiB page cache, so its volume "
            f"({self.node.volume_mb_s:g} MB/s) feeds at most {self.feed_clips_per_s:,.0f} clips/s")
        room = "" if self.capacity <= self.concurrent else (
            f" (the space's max_concurrent; its {self.node.max_workers} nodes could run {self.capacity}: raise "
            "--max-concurrent to use them)")
        return [f"{self.subset}: node type {self.node.name} ({self.node.gpus} x {self.node.card.name}, "
                f"{self.node.cpus:g} CPUs), {self.per_node} trial(s) per node ({self.cpus:g} CPUs, {self.gpu:g} GPU "
                f"each: a step at batch {self.batch} needs {self.needed_gib:.1f} GiB), {self.concurrent} at once{room}",
                f"  {self.epochs:,.0f} epochs expected ({self.train_clips:,} training and {self.val_clips:,} validation "
                f"clips each), {self.clips_per_s:,.0f} train clips/s per trial ({source}){feed}",
                f"  {_hours(self.gpu_hours)} GPU-hours, about {_hours(self.wall_hours)} hours of wall time, "
                f"{self.cost_text()}"]


def _hours(value: float) -> str:
    return f"{value:,.1f}" if value >= 1 else f"{value:.2g}"


def plan_subset(subset: str, types: list[NodeType], cpus: float, gpus_declared: float | None, batch: int,
                needed: int, concurrency: int, epochs: float, clips: tuple[int, int], bytes_per_clip: int,
                array_bytes: int) -> list[SubsetPlan]:
    """The subset's trials on every node type they fit, the cheapest first (by cost, where every price is known;
    else in the file's order)."""
    fits, reasons = [], []
    for node in types:
        try:
            fits.append(_on_node(subset, node, cpus, gpus_declared, batch, needed, concurrency, epochs, clips,
                                 bytes_per_clip, array_bytes))
        except PlanError as exc:
            reasons.append(str(exc))
    if not fits:
        raise PlanError(f"{subset}: its trials fit no node type: " + "; ".join(reasons))
    if all(plan.cost is not None for plan in fits):
        fits.sort(key=lambda plan: plan.cost)
    return fits


def _on_node(subset: str, node: NodeType, cpus: float, gpus_declared: float | None, batch: int, needed: int,
             concurrency: int, epochs: float, clips: tuple[int, int], bytes_per_clip: int,
             array_bytes: int) -> SubsetPlan:
    """The subset's trials on one node type, or a PlanError saying why they do not fit it."""
    if node.card is None:
        raise PlanError(f"{node.name} has no GPU")
    gpu = gpu_share(needed, node.card)
    if gpu is None:
        raise PlanError(f"{node.name}: a {node.card.name} has {node.card.memory_gib:g} GiB, a trial needs "
                        f"{needed / GIB:.1f} GiB at batch {batch}")
    gpu = max(gpu, gpus_declared or 0.0)
    per_node = min(int(node.cpus // cpus) if cpus else 10 ** 6, int(node.gpus // gpu))
    if per_node < 1:
        raise PlanError(f"{node.name} has {node.cpus:g} CPUs, a trial asks for {cpus:g}")
    measured = measured_clips_per_s(node.card, batch)
    rate = measured or ASSUMED_UTILISATION * node.card.bf16_tflops * 1e3 / GFLOP_PER_CLIP * gpu
    feed = node.volume_mb_s * 1e6 / bytes_per_clip if array_bytes > 0.8 * node.memory_gib * GIB else None
    capacity = per_node * node.max_workers
    return SubsetPlan(subset, node, cpus, gpu, per_node, min(concurrency, capacity), capacity, batch,
                      needed / GIB, epochs, rate, measured is not None, clips[0], clips[1], feed)


def largest_batch(space, profile_cpu: bool) -> int:
    """The largest batch the space can give a trial (a searched batch size's top, else its base's)."""
    for param in space.params:
        if param.name == "batch_size":
            return int(max(param.options() or [param.high]))
    return int(space.base_config(profile_cpu).get("batch_size", 256))


def mean_fraction(space) -> float:
    """The share of each class's training clips a trial of ``space`` trains on, on average: a searched
    fraction_per_class's mean (uniform draws), else its base value, else all of them."""
    for param in space.params:
        if param.name == "fraction_per_class":
            return (param.low + param.high) / 2 if param.low is not None else 1.0
    return float(space.base_config(False).get("fraction_per_class") or 1.0)


SUBSET_CLASSES = {"kinetics-motion": 30, "kinetics-392": 392}


def plan_study(request, space, cluster: Path) -> list[str]:
    """The plan's lines for every subset of ``request`` (a StudyRequest) on the node types of ``cluster``: the
    paper-shape network's trials, as a study on real data runs them. Without real data (--data), the clip counts are
    the Kinetics-skeleton release's, at its average clips per class, and the plan says so."""
    from kinetics.dataset import ConvertedDataset
    from kinetics.source import resolve_data_dir
    from training.trainer import subset_spec

    types = node_types(cluster)
    dataset = ConvertedDataset(resolve_data_dir(request.data))
    real = dataset.source == "real"
    fraction = mean_fraction(space)
    lines = [f"plan of {space.name} on {cluster} ({len(types)} node type(s) for trials), {request.num_samples} trials "
             f"per subset, the paper-shape network, " + (f"data {dataset.root}" if real else
             f"Kinetics-skeleton as released ({RELEASE_CLIPS['train']:,} training and {RELEASE_CLIPS['val']:,} "
             f"validation clips over {RELEASE_CLIPS['classes']} classes; each subset planned at the average clips per "
             "class: give --data with the converted release for its exact counts)")]
    if fraction < 1:
        lines.append(f"  the space trains on {fraction:.0%} of each class's clips on average (fraction_per_class)")
    plans = []
    for subset in request.subsets:
        config = space.to_config({}, False, {**request.overrides, "subset": subset, "data": request.data})
        if real:
            index = dataset.subset(subset_spec(config))
            classes, train, val = len(index["train"].class_names), len(index["train"]), len(index["val"])
        else:
            classes = SUBSET_CLASSES[subset]
            train, val = (round(RELEASE_CLIPS[split] * classes / RELEASE_CLIPS["classes"]) for split in ("train", "val"))
        batch = largest_batch(space, False)
        needed = step_memory(config.width, config.window, classes, config.amp, config.optimizer).total(batch)
        declared = space.trial_resources(False, subset)
        epochs = expected_epochs(request.num_samples, config.epochs, space.grace_period, space.reduction_factor,
                                 request.early_stopping) + request.repeats * request.seeds * config.epochs
        bytes_per_clip = 3 * ((config.window - 1) * config.frame_stride + 1) * 18 * 2 * 4
        stored_clip = 3 * 300 * 18 * 2 * 4  # the converted array's bytes per clip (all 300 frames): a subset's share
        options = plan_subset(subset, types, request.cpus_per_trial or declared["cpu"],
                              request.gpus_per_trial or declared["gpu"], batch, needed, request.max_concurrent, epochs,
                              (round(train * fraction), val), bytes_per_clip, stored_clip * train)
        lines += options[0].lines()
        lines += [f"  also fits {other.node.name}: {_hours(other.gpu_hours)} GPU-hours, about "
                  f"{_hours(other.wall_hours)} hours, " + (f"about ${other.cost:,.2f}" if other.cost is not None else
                                                          "no price known") for other in options[1:]]
        plans.append(options[0])
    costs = [p.cost for p in plans]
    lines.append(f"study: {_hours(sum(p.gpu_hours for p in plans))} GPU-hours; about "
                 f"{_hours(max(p.wall_hours for p in plans))} hours of wall time with the subsets side by side (each its "
                 f"own concurrency), plus about {NODE_START_MIN:g} min to start the nodes (ASSUMED)"
                 + (f"; about ${sum(costs):,.2f} on the node types above" if None not in costs else ""))
    return lines
