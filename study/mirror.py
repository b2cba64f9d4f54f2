"""A study stored at a URI (s3://bucket/studies, gs://..., file://...): Ray Tune writes its experiments there
itself; the driver writes its own files (manifest, result tables, Optuna journal, report) to a local directory
first, atomically, and a background thread copies each one up after it changes. So the shared storage always gets
the current tables, and nothing lives only on a node the autoscaler may remove.

The copies never hold up Tune's loop (a storage that hangs would stall every trial through it): ``push`` only marks
a path as changed. The copier copies each marked path as it is at that moment, and retries a failed copy with
back-off, for as long as the study runs; a path marked again while it waits is copied once. ``flush`` waits until
every marked path has landed: the driver copies all its files and flushes before it calls the study finished, so a
study the storage says is finished has all its tables there.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from common import logs
from study import faults
from training.results import EPOCHS, MANIFEST, OPTUNA, SPACE_COPY, TRIALS

# The driver's own files; Tune's experiments (one folder per subset) are written to the URI by Ray.
DRIVER_FILES = (MANIFEST, SPACE_COPY, EPOCHS, TRIALS, OPTUNA)
FIRST_BACKOFF_S, MAX_BACKOFF_S = 1.0, 30.0

log = logs.get("mirror")


class Mirror:
    """One per study and driver process (``Mirror.of``): its copier thread is shared by every ``push``."""

    _running: dict[tuple[str, str], Mirror] = {}
    _lock = threading.Lock()

    def __init__(self, local_root: Path, uri: str):
        self.local_root, self.uri = Path(local_root), uri.rstrip("/")
        self._fs: pafs.FileSystem | None = None
        self._changed: dict[Path, None] = {}  # paths to copy, oldest first
        self._failed: dict[Path, str] = {}  # path -> last error, while it keeps failing
        self._cond = threading.Condition()
        self._copying = False
        self._thread: threading.Thread | None = None

    @classmethod
    def of(cls, local_root: Path, uri: str) -> Mirror:
        key = (str(local_root), uri.rstrip("/"))
        with cls._lock:
            if key not in cls._running:
                cls._running[key] = cls(local_root, uri)
            return cls._running[key]

    def __getstate__(self) -> dict:
        return {"local_root": self.local_root, "uri": self.uri}  # a filesystem handle and a thread do not pickle

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def _remote(self, relative: str) -> tuple[pafs.FileSystem, str]:
        if self._fs is None:
            self._fs, self._base = pafs.FileSystem.from_uri(self.uri)
        return self._fs, f"{self._base}/{relative}".rstrip("/")

    def push(self, *paths: Path) -> None:
        """Mark these local files or folders (inside the local root) to be copied to the same place under the URI;
        returns at once."""
        with self._cond:
            for path in paths:
                self._changed.pop(Path(path), None)
                self._changed[Path(path)] = None
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._copier, name=f"mirror {self.uri}", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def push_all(self) -> None:
        """Every driver file there is, whatever was marked."""
        self.push(*(self.local_root / name for name in DRIVER_FILES if (self.local_root / name).exists()))

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every marked path has been copied (or ``timeout_s`` passed); whether all landed."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while self._changed or self._copying:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left if left is None else min(left, 1.0))
            return True

    @property
    def failing(self) -> dict[Path, str]:
        """Paths whose last copy failed and that are waiting to be retried, with the error."""
        with self._cond:
            return dict(self._failed)

    def _copier(self) -> None:
        backoff = FIRST_BACKOFF_S
        while True:
            with self._cond:
                while not self._changed:
                    self._cond.wait()
                path = next(iter(self._changed))
                del self._changed[path]
                self._copying = True
            try:
                self._copy(path)
            except (OSError, pa.ArrowException) as exc:
                with self._cond:
                    self._copying = False
                    if path not in self._changed:
                        self._changed[path] = None  # behind the others, which are tried before it again
                    if path not in self._failed:
                        log.warning("could not copy %s to %s (%s); retrying with back-off until it lands", path,
                                    self.uri, exc)
                    self._failed[path] = str(exc)
                    self._cond.notify_all()
                time.sleep(backoff)
                backoff = min(2 * backoff, MAX_BACKOFF_S)
                continue
            backoff = FIRST_BACKOFF_S
            with self._cond:
                self._copying = False
                if self._failed.pop(path, None) is not None:
                    log.warning("copied %s to %s after earlier failures", path, self.uri)
                self._cond.notify_all()
            faults.point("mirror.copied_one")

    def _copy(self, path: Path) -> None:
        fs, target = self._remote(path.relative_to(self.local_root).as_posix())
        if not path.exists():  # removed locally (a trial Tune forgot, study/tuners.py): removed there too
            info = fs.get_file_info(target)
            if info.type == pafs.FileType.File:
                fs.delete_file(target)
            return
        fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        if not path.is_dir():
            return self._copy_file(fs, path, target)
        fs.create_dir(target, recursive=True)
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            inner = f"{target}/{file.relative_to(path).as_posix()}"
            fs.create_dir(inner.rsplit("/", 1)[0], recursive=True)
            self._copy_file(fs, file, inner)

    @staticmethod
    def _copy_file(fs: pafs.FileSystem, path: Path, target: str) -> None:
        """On a filesystem (file://, a shared mount) the copy is written beside the target and renamed onto it, so
        a reader (a new head resuming, a report built from the storage) never sees a file half copied, even when the
        driver dies mid-copy; an object store's put is already all or nothing."""
        if not isinstance(fs, pafs.LocalFileSystem):
            pafs.copy_files(str(path), target, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
            return
        folder, name = target.rsplit("/", 1)
        partial = f"{folder}/.{name}.copying"  # hidden, and no reader's *.parquet or *.journal
        pafs.copy_files(str(path), partial, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
        fs.move(partial, target)

    def exists(self, relative: str) -> bool:
        fs, target = self._remote(relative)
        return fs.get_file_info(target).type != pafs.FileType.NotFound

    def pull(self) -> None:
        """Fetch the driver's files of an existing study (for --resume on a machine that lacks them)."""
        self.local_root.mkdir(parents=True, exist_ok=True)
        for name in DRIVER_FILES:
            if not self.exists(name):
                continue
            fs, source = self._remote(name)
            if fs.get_file_info(source).type == pafs.FileType.Directory:
                (self.local_root / name).mkdir(parents=True, exist_ok=True)
            pafs.copy_files(source, str(self.local_root / name), source_filesystem=fs,
                            destination_filesystem=pafs.LocalFileSystem())
