"""The project's logging: every message of the driver, the trainer and the report goes through the ``stgcn`` logger,
so ``--quiet`` (warnings and errors only) and ``-v`` (debug detail) set how much is said, in the driver and in the
trials it starts. Messages print as they are, to the standard output of the moment (errors of bad input are not
logged: the commands print them to stderr and exit 2)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

LOGGER = "stgcn"
# A trial's own lines start with its name in brackets ("[STUDY.SUBSET.0003] epoch 5: ..."). Ray's driver folds lines
# of different workers that differ only in their numbers into one "[repeated 2x across cluster]", which would hide
# every other epoch of two trials running side by side; lines that match this are printed as they come.
TRIAL_LINE = r"^\[[^\]]+\] "
DEDUP_ALLOW = "RAY_DEDUP_LOGS_ALLOW_REGEX"  # read by Ray once, when ray is first imported


def trial_line(trial: str, text: str) -> str:
    return f"[{trial}] {text}"


def keep_trial_lines() -> None:
    """Before Ray is imported: its log deduplication leaves the trials' lines alone (a user's own setting wins)."""
    os.environ.setdefault(DEDUP_ALLOW, TRIAL_LINE)


class _CurrentStdout(logging.StreamHandler):
    """Writes to whatever sys.stdout is when a message is logged (a test's capture, Ray's worker redirection)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        pass


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_const", const=logging.WARNING, dest="log_level",
                       help="say only warnings and errors (no progress)")
    group.add_argument("-v", "--verbose", action="store_const", const=logging.DEBUG, dest="log_level",
                       help="say more: debug detail (and, in study.run, Tune's line per result)")


def configure(level: int | None) -> int:
    """Sets the level (None: INFO, progress lines) of every ``stgcn.*`` logger; returns it."""
    level = logging.INFO if level is None else level
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(h, _CurrentStdout) for h in logger.handlers):
        handler = _CurrentStdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
    return level


def level() -> int:
    return logging.getLogger(LOGGER).getEffectiveLevel()


def get(name: str) -> logging.Logger:
    """``stgcn.<name>``: configured on first use, so a library caller (a test, a notebook) sees progress too."""
    if not logging.getLogger(LOGGER).handlers:
        configure(None)
    return logging.getLogger(f"{LOGGER}.{name}")
