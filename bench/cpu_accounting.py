"""Where a benchmark's CPU time went, by kind of process: the trainers, the process that drives them, Ray's own
services, and the cores left idle.

A wall-clock ratio between two runs minutes apart carries the machine's drift (a shared VM's speed moves by more
than the overheads measured). CPU seconds by process do not depend on when they were spent: the trainers' CPU
seconds are the same arithmetic on both sides, and what Ray's processes used is what Ray cost. Linux only (/proc):
elsewhere ``CpuAccount.totals`` is None and the benchmark prints wall times only.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# Ray's processes that are not a trial's: their names (the kernel's 15-character comm) or command lines.
RAY_SERVICES = ("gcs_server", "raylet", "dashboard", "ray-dashboard", "log_monitor", "monitor.py", "ray::IDLE",
                "ray::DashboardA", "ray::RuntimeEnv", "runtime_env", "ray_client_server")


def processes() -> dict[tuple[int, int], tuple[float, str]]:
    """(pid, start tick) -> (CPU seconds so far, what it is: its comm and command line)."""
    found = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        comm, fields = stat[stat.find("(") + 1:stat.rfind(")")], stat[stat.rfind(")") + 2:].split()
        found[(int(entry.name), int(fields[19]))] = ((int(fields[11]) + int(fields[12])) / TICKS, f"{comm} {command}")
    return found


def kind(description: str, driver: str) -> str:
    """trainer, driver, ray or other, from a process's comm and command line; ``driver``: a string in the driving
    process's command line."""
    if any(name in description for name in RAY_SERVICES):
        return "ray"
    if description.startswith("ray::") or "spawn_main" in description:
        return "trainer"  # a Tune trial's actor, or a peer's worker process
    if driver in description:
        return "driver"
    return "other"


class CpuAccount:
    """A context: every process started while it is open, sampled; ``totals()``: CPU seconds by kind, and the idle
    core-seconds of its wall time (None where /proc is missing). ``driver``: as ``kind`` takes it."""

    def __init__(self, driver: str, interval_s: float = 0.5):
        self.driver, self.interval_s = driver, interval_s
        self.available = PROC.is_dir() and (PROC / "self" / "stat").is_file()
        self.seen: dict[tuple[int, int], tuple[float, str]] = {}
        self._stop = threading.Event()

    def __enter__(self) -> CpuAccount:
        self.before = set(processes()) if self.available else set()
        self.began = time.perf_counter()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.wall_s = time.perf_counter() - self.began

    def _sample(self) -> None:
        while self.available:
            for key, (cpu, description) in processes().items():
                if key in self.before:
                    continue
                if key in self.seen and not description.partition(" ")[2]:  # ended, not yet reaped: no command line
                    description = self.seen[key][1]
                self.seen[key] = (cpu, description)
            if self._stop.wait(self.interval_s):
                break

    def totals(self, cores: int) -> dict[str, float] | None:
        if not self.available:
            return None
        out = {"trainer": 0.0, "driver": 0.0, "ray": 0.0, "other": 0.0}
        for cpu, description in self.seen.values():
            out[kind(description, self.driver)] += cpu
        out["idle"] = max(0.0, self.wall_s * cores - sum(out.values()))
        return {k: round(v, 1) for k, v in out.items()}
