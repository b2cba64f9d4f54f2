"""Atomic file writing: a reader never sees half a file, and a failed write leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# The process's file-creation mask, read once (reading it means setting it). Files get the permissions any new file
# of the user gets (0644 under the usual 022, group-readable under 002), not mkstemp's 0600: a study on a shared
# filesystem must be readable by the user's group.
FILE_MODE = 0o666 & ~_umask()


def is_uri(storage: str) -> bool:
    """A storage given as a URI (s3://bucket/studies), not a local path."""
    return "://" in storage


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; it is renamed onto ``target`` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json(target: Path, obj) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_pickle(target: Path, obj) -> None:
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        pickle.dump(obj, handle, protocol=4)


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's several-line message in one: what is wrong and where (line and column, counted from 1)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def read_yaml_mapping(path: Path, error: type[Exception], what: str) -> dict:
    """A YAML (or JSON) file that must hold a mapping; ``error`` names the file and what went wrong."""
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML/JSON ({yaml_problem(exc)})") from exc
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise error(f"{path}: expected a mapping of key: value, found {type(values).__name__}")
    return values
