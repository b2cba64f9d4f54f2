"""What a local Ray costs before it runs anything: the floor under a study's ratio to bench_overhead's peer.

A local Ray is started as ``python -m study.run`` starts it (``ray.init(address="local")``, its dashboard on), and
beside it one without the dashboard, each in a fresh interpreter, in turn. For each: the wall and CPU seconds of
``import ray`` and ``ray.init`` (every process it starts included), the CPU seconds per minute its services use
while nothing runs on it (by service; the driver's own Ray threads included, the workers Ray starts ahead of any
task left out: a study's trials replace them), and ``ray.shutdown``'s wall time.

On cores the trials keep busy (the main job: two trials on two cores) every CPU second a Ray service uses is taken
from a trial, and a slower moment of a shared machine makes the same services cost more CPU seconds. So
bench_overhead measures this right after its peer, and ``floor_over_peer`` is the least a study on that Ray costs
over that peer, before its driver's loop, its workers' start or its report: a floor no change to this project's
code goes under, short of starting Ray without its dashboard (the second set-up).
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from bench.cpu_accounting import processes

SETUPS = {"with its dashboard": True, "without its dashboard": False}  # ray.init's include_dashboard
# Workers Ray starts ahead of any task: a study's trials take their place (Ray stops idle workers beyond its CPUs),
# so they are part of its start, not of the services that run through it.
PRESTARTED_WORKER = "ray::IDLE"


def service(description: str) -> str:
    """A process's service name: its comm, or for a Python process the script it runs."""
    comm, _, command = description.partition(" ")
    if comm.startswith("python"):
        script = next((Path(token).name for token in command.split() if token.endswith(".py")), None)
        return script or comm
    return comm


def floor_over_peer(init_cpu_s: float, idle_cpu_s_per_min: float, shutdown_s: float, peer_s: float,
                    cores: int) -> float:
    """The least a study on this Ray costs over the peer when the trials keep every core busy: the CPU seconds Ray
    takes from them (its start, its services through the peer's duration) over the cores, plus its shutdown."""
    taken_s = (init_cpu_s + idle_cpu_s_per_min / 60 * peer_s) / cores + shutdown_s
    return 1 + taken_s / peer_s


def _measure(include_dashboard: bool, idle_s: float) -> dict:
    """In a fresh interpreter: start a local Ray, leave it idle, stop it; wall and CPU seconds of each phase."""
    began = time.perf_counter()
    import ray
    imported = time.perf_counter()
    before, own = processes(), time.process_time()
    ray.init(address="local", include_dashboard=include_dashboard, log_to_driver=True)
    started = time.perf_counter()
    at_start, own_at_start = processes(), time.process_time()
    time.sleep(idle_s)
    at_end, own_at_end = processes(), time.process_time()
    stopping = time.perf_counter()
    ray.shutdown()
    stopped = time.perf_counter()
    started_processes = {key: value for key, value in at_end.items() if key not in before}
    idle: dict[str, float] = {"driver's Ray threads": own_at_end - own_at_start}
    for key, (cpu, description) in started_processes.items():
        name = service(description)
        if name == PRESTARTED_WORKER:
            continue
        idle[name] = idle.get(name, 0.0) + cpu - at_start.get(key, (0.0, ""))[0]
    start_cpu = sum(cpu for key, (cpu, _) in at_start.items() if key not in before) + own_at_start - own
    return {"import_s": imported - began, "init_s": started - imported, "init_cpu_s": start_cpu,
            "idle_cpu_s_per_min": {name: 60 * cpu / idle_s for name, cpu in idle.items()},
            "shutdown_s": stopped - stopping}


def measure(idle_s: float, peer_s: float, cores: int) -> list[dict]:
    """Each set-up measured once, in turn, with its floor over a peer of ``peer_s`` seconds on ``cores``."""
    rows = []
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        for name, dashboard in SETUPS.items():
            run = pool.apply(_measure, (dashboard, idle_s))
            idle = sum(run["idle_cpu_s_per_min"].values())
            services = sorted(run["idle_cpu_s_per_min"].items(), key=lambda item: -item[1])
            rows.append({"setup": name, "import_s": round(run["import_s"], 2), "init_s": round(run["init_s"], 2),
                         "init_cpu_s": round(run["init_cpu_s"], 2), "idle_cpu_s_per_min": round(idle, 2),
                         "shutdown_s": round(run["shutdown_s"], 2),
                         "services": {s: round(v, 2) for s, v in services},
                         "floor_over_peer": round(floor_over_peer(run["init_cpu_s"], idle, run["shutdown_s"], peer_s,
                                                                  cores), 3)})
    return rows


def describe(row: dict) -> str:
    """A set-up's figures as a printed line."""
    return (f"  a local Ray {row['setup']}, idle: ray.init {row['init_s']:.1f} s ({row['init_cpu_s']:.1f} CPU s), its "
            f"services {row['idle_cpu_s_per_min']:.1f} CPU s per minute (" +
            ", ".join(f"{s} {v:.2f}" for s, v in list(row["services"].items())[:4]) +
            f"), ray.shutdown {row['shutdown_s']:.1f} s: a study on it costs at least {row['floor_over_peer']:.3f}x "
            "the peer")
