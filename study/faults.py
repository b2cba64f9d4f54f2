"""Named moments of the driver where a fault can be injected, for the fault-injection harness (bench/bench_faults.py).

``STGCN_STUDY_FAULT=POINT:N:SIGNAL`` (for example ``tune.checkpoint_registered:3:KILL``) makes the driver send
itself SIGNAL (KILL or INT) the N-th time it passes POINT. Unset, ``point`` is a dictionary lookup and nothing else.
The points are the windows docs/faults.md's guarantees are about: a checkpoint Tune registered (and its older one
deleted) before the experiment state that names it is saved; Tune's own upload of that state to the storage cut in
the middle of a file; a result written locally but not yet copied to the storage URI; a trial asked of Optuna but not
yet known to Tune; the search over and the repeats not yet chosen; the study done but not yet marked finished.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

ENV = "STGCN_STUDY_FAULT"
POINTS = ("searcher.asked", "recorder.writing", "recorder.result_written", "recorder.trial_ended",
          "tune.checkpoint_registered", "tune.state_upload_cut", "mirror.copied_one", "driver.search_done",
          "driver.repeats_chosen", "driver.finishing")
_counts: dict[str, int] = {}


# What a planned fault does: a signal to the process, or a full disk under the write at that point.
ACTIONS = {"KILL": signal.SIGKILL, "INT": signal.SIGINT, "ENOSPC": errno.ENOSPC}


def _planned() -> tuple[str, int, str] | None:
    spec = os.environ.get(ENV)
    if not spec:
        return None
    name, count, action = spec.split(":")
    if name not in POINTS or action not in ACTIONS:
        raise ValueError(f"{ENV}={spec}: a point of {', '.join(POINTS)}, a count, and one of {', '.join(ACTIONS)}")
    return name, int(count), action


def _due(name: str) -> int | None:
    """Counts a passage of ``name``; the signal to send when this passage is the planned one (a planned full disk
    raises here, as the write at that point would)."""
    planned = _planned()
    if planned is None or planned[0] != name:
        return None
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] != planned[1]:
        return None
    if planned[2] == "ENOSPC":
        raise OSError(errno.ENOSPC, f"No space left on device (fault point {name})")
    return ACTIONS[planned[2]]


def point(name: str) -> None:
    """Passing ``name``: the fault planned there, if this is its occurrence."""
    sig = _due(name)
    if sig is not None:
        os.kill(os.getpid(), sig)


def install() -> None:
    """The points inside Ray Tune, patched in only when a fault is planned at one of them."""
    planned = _planned()
    if planned is not None and planned[0] == "tune.checkpoint_registered":
        _after_checkpoint_registered()
    if planned is not None and planned[0] == "tune.state_upload_cut":
        _inside_state_upload()


def _after_checkpoint_registered() -> None:
    """Right after a trial's new checkpoint is registered (Tune deletes the one num_to_keep drops there) and before
    the experiment state that names the checkpoints is saved."""
    from study import ray_compat  # Ray only where a fault point is planned
    ray_compat.on_checkpoint_registered(lambda: point("tune.checkpoint_registered"))


def _inside_state_upload() -> None:
    """In the middle of Tune's upload of its experiment state (trial states, searcher state) to the storage: the
    files before one are copied, that one only half (a copy in flight when the driver dies), the rest not at all.
    Which file is cut turns with the occurrence, so the kill points reach each of them."""
    from study import ray_compat

    def upload(original, local_path, fs, fs_path, exclude=None):
        sig = _due("tune.state_upload_cut")
        if sig is None or not Path(local_path).is_dir():
            return original(local_path, fs, fs_path, exclude)
        files = sorted(p for p in Path(local_path).rglob("*") if p.is_file())
        cut = _counts["tune.state_upload_cut"] % len(files)
        for i, file in enumerate(files[:cut + 1]):
            target = f"{fs_path}/{file.relative_to(local_path).as_posix()}"
            fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            data = file.read_bytes()
            with fs.open_output_stream(target) as out:
                out.write(data if i < cut else data[:len(data) // 2])
        os.kill(os.getpid(), sig)

    ray_compat.within_state_upload(upload)
