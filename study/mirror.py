"""A study stored at a URI (s3://bucket/studies, gs://..., file://...): Ray Tune writes its experiments there
itself; the driver writes its own files (manifest, result tables, Optuna journal, report) to a local directory
first, atomically, and copies each one up as it changes. So the shared storage always has the current tables,
and nothing lives only on a node the autoscaler may remove.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from training.results import EPOCHS, MANIFEST, OPTUNA, SPACE_COPY, TRIALS

# The driver's own files; Tune's experiments (one folder per subset) are written to the URI by Ray.
DRIVER_FILES = (MANIFEST, SPACE_COPY, EPOCHS, TRIALS, OPTUNA)
PUSH_ATTEMPTS, FIRST_BACKOFF_S = 4, 1.0

log = logging.getLogger(__name__)


def is_uri(storage: str) -> bool:
    return "://" in storage


class Mirror:
    def __init__(self, local_root: Path, uri: str):
        self.local_root, self.uri = Path(local_root), uri.rstrip("/")
        self._fs: pafs.FileSystem | None = None

    def __getstate__(self) -> dict:
        return {"local_root": self.local_root, "uri": self.uri}  # a filesystem handle does not pickle

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def _remote(self, relative: str) -> tuple[pafs.FileSystem, str]:
        if self._fs is None:
            self._fs, self._base = pafs.FileSystem.from_uri(self.uri)
        return self._fs, f"{self._base}/{relative}".rstrip("/")

    def push(self, *paths: Path) -> bool:
        """Copy these local files or folders (inside the local root) to the same place under the URI. A failed
        copy is retried with back-off, then logged and left for the next push (which copies the file as it is
        then): a storage hiccup never ends a study. Returns whether everything was copied."""
        copied = True
        for path in paths:
            for attempt in range(PUSH_ATTEMPTS):
                try:
                    self._copy(Path(path))
                    break
                except (OSError, pa.ArrowException) as exc:
                    if attempt + 1 == PUSH_ATTEMPTS:
                        log.warning("could not copy %s to %s after %d attempts (%s); the next change copies it",
                                    path, self.uri, PUSH_ATTEMPTS, exc)
                        copied = False
                    else:
                        time.sleep(FIRST_BACKOFF_S * 2 ** attempt)
        return copied

    def _copy(self, path: Path) -> None:
        fs, target = self._remote(path.relative_to(self.local_root).as_posix())
        fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        if path.is_dir():
            fs.create_dir(target, recursive=True)
        pafs.copy_files(str(path), target, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)

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
