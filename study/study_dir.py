"""A study's directory: created once, never written by another study, resumable, used by one driver at a time.

    <storage>/<name>/
        study.json            what was asked (space, subsets, data, seed, budget, overrides) and when
        space.yaml            the search space as the study started it (paths absolute); --resume reads this copy
        search/               Ray Tune's experiment of the search, every subset's trials in it (trial folders,
                              checkpoints, searcher and scheduler state)
        seeds/                the seed repeats of each subset's best configs (--repeats K --seeds N), when asked
        experiments/          one folder per trial, in the researchers' layout (training.folder)
        epochs.parquet/       one row per trial and epoch (training.results)
        trials.parquet/       one row per trial
        optuna/<subset>.journal   each subset's Optuna study, loadable with optuna.load_study
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from common.files import is_uri, write_json, write_text
from study.mirror import Mirror
from training.results import MANIFEST, SPACE_COPY

LOCK = ".driver.lock"


class StudyDirError(ValueError):
    """The study directory cannot be used as asked (exists without --resume, nothing to resume, not a study,
    another driver runs it)."""


@dataclass(frozen=True)
class StudyRequest:
    """What a study was asked to do; stored in study.json so --resume continues exactly this."""
    space: str  # where the space was read from when the study started (the study keeps its own copy)
    subsets: tuple[str, ...]
    num_samples: int
    data: str
    profile: str
    seed: int
    cpus_per_trial: float | None  # None: the space's resources, per subset
    gpus_per_trial: float | None
    max_concurrent: int
    max_failures: int
    overrides: dict = field(default_factory=dict)
    # A trial starts in the worker of a finished one, where the imports and the open data stay (its scores are those
    # of a fresh worker: tests/test_study.py); False starts a new worker process for every trial.
    reuse_actors: bool = True
    early_stopping: bool = True  # ASHA; False runs every trial to its last epoch (the baseline ASHA is judged by)
    repeats: int = 0  # after the search: re-run the best `repeats` configs of each subset ...
    seeds: int = 0  # ... with this many other seeds, to measure the seed-noise floor

    def to_dict(self) -> dict:
        values = asdict(self)
        values["subsets"] = list(self.subsets)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> StudyRequest:
        return cls(**{**values, "subsets": tuple(values["subsets"])})


@dataclass(frozen=True)
class StudyLocation:
    """Where a study lives: ``storage/name`` locally; with ``remote`` (a URI) Tune writes to ``remote/name`` and
    the local directory holds the driver's files, each copied up as it changes."""
    storage: Path
    name: str
    remote: str | None = None

    @property
    def root(self) -> Path:
        return self.storage / self.name

    @property
    def tune_storage(self) -> str:
        return f"{self.remote.rstrip('/')}/{self.name}" if self.remote else str(self.root)

    @property
    def mirror(self) -> Mirror | None:
        return Mirror.of(self.root, self.tune_storage) if self.remote else None

    def push(self, *paths: Path) -> None:
        """Copy these driver files to the storage URI in the background (see study.mirror)."""
        if self.remote:
            self.mirror.push(*paths)

    def sync(self, timeout_s: float | None = None) -> bool:
        """Copy every driver file to the storage URI and wait until all have landed; whether they did."""
        if not self.remote:
            return True
        self.mirror.push_all()
        return self.mirror.flush(timeout_s)


def check_storage(where: str | Path, option: str) -> None:
    """An unusable storage is bad input: refused in one line, naming the path and why, before anything (Ray included)
    starts. A storage is usable when its nearest existing folder takes a file: a probe is written there and removed
    (permissions alone do not tell: root, read-only mounts, object-store policies), so nothing is left behind."""
    uri = isinstance(where, str) and is_uri(where)
    try:
        fs, path = pafs.FileSystem.from_uri(where) if uri else (pafs.LocalFileSystem(), str(Path(where).absolute()))
        while True:
            info = fs.get_file_info(path)
            if info.type == pafs.FileType.File:
                raise StudyDirError(f"{option} {where}: {path} is a file, so no study folder can be made under it")
            parent = (path.rstrip("/").rsplit("/", 1)[0] or "/") if "/" in path.rstrip("/") else path
            if info.type == pafs.FileType.Directory or parent == path:  # a bucket is the top of its URI
                break
            path = parent
    except StudyDirError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise StudyDirError(f"{option} {where}: the storage cannot be reached or is not a URI pyarrow knows "
                            f"({_first_line(exc)})") from exc
    probe = f"{path.rstrip('/')}/.stgcn-study-probe-{os.getpid()}-{time.monotonic_ns()}"
    try:
        with fs.open_output_stream(probe) as stream:
            stream.write(b"")
        fs.delete_file(probe)
    except (pa.ArrowException, OSError) as exc:
        raise StudyDirError(f"{option} {where}: cannot write in {path}: creating a file there failed "
                            f"({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    """What the system said, in a few words: the errno's text where there is one."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def default_name(space: str) -> str:
    return f"{space}-{time.strftime('%Y%m%d-%H%M%S')}"


def latest_of(storage: Path, space: str) -> Path:
    """The most recently started study of ``space`` in ``storage``, for --resume without --name."""
    candidates = sorted((p for p in storage.glob(f"{space}-*") if (p / MANIFEST).is_file()),
                        key=lambda p: json.loads((p / MANIFEST).read_text())["created_at"])
    if not candidates:
        raise StudyDirError(f"{storage}: no study of space '{space}' to resume; start one without --resume, "
                            "or pass --name")
    return candidates[-1]


def refuse_existing(root: Path) -> None:
    if root.exists() and any(root.iterdir()):
        raise StudyDirError(f"{root}: a study of this name already exists; pass --resume to continue it, or "
                            "choose another --name")


def create(root: Path, request: StudyRequest, space_text: str) -> None:
    """A new study directory; refuses an existing one so two studies never write into each other."""
    refuse_existing(root)
    root.mkdir(parents=True, exist_ok=True)
    write_text(root / SPACE_COPY, space_text)
    write_json(root / MANIFEST, {"name": root.name, "created_at": time.time(),
                                 "created": time.strftime("%Y-%m-%d %H:%M:%S"), "request": request.to_dict(),
                                 "status": "running"})


def load_request(root: Path) -> StudyRequest:
    """The stored request of an existing study, for --resume."""
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise StudyDirError(f"{root}: not a study directory (no {MANIFEST}); nothing to resume")
    try:
        return StudyRequest.from_dict(json.loads(manifest.read_text())["request"])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise StudyDirError(f"{manifest}: unreadable study manifest ({exc})") from exc


def fetch_request(location: StudyLocation) -> StudyRequest:
    """The stored request of the study at ``location``; a study kept at a URI is first fetched to a head that lacks
    its driver files (a new head after the old one died)."""
    if location.remote and not (location.root / MANIFEST).is_file():
        location.mirror.pull()
    return load_request(location.root)


def refuse_moved(location: StudyLocation) -> None:
    """Ray Tune stores its experiment with absolute paths: after a restore, trials it creates anew would still
    write to where the study was started, and fail when that place is gone. A moved study is refused, saying where
    it has to be to resume."""
    started = json.loads((location.root / MANIFEST).read_text()).get("tune_storage")
    if started and started != location.tune_storage:
        raise StudyDirError(f"{location.root}: the study was started at {started} and is now at "
                            f"{location.tune_storage}; Ray Tune's stored experiment keeps the old place for the trials "
                            f"it has yet to start, so it cannot resume here. Move (or copy) the study back to {started} "
                            "and resume it there; its report builds anywhere (python -m reports.build).")


def update(root: Path, **fields) -> None:
    manifest = json.loads((root / MANIFEST).read_text())
    write_json(root / MANIFEST, {**manifest, **fields})


@contextlib.contextmanager
def driver_lock(root: Path) -> Iterator[None]:
    """Held while a driver runs the study, so a resubmitted job on the same head is refused instead of
    interleaving its trials with the running one. (Two heads sharing only remote storage are not covered.)"""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise StudyDirError(f"{root}: another driver is running this study ({handle.read().strip() or 'unknown'}); "
                                "wait for it to end or stop it before resuming") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
