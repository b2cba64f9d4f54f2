"""--report-every MINUTES: the report rebuilt while the study runs, so its page is a live view of matched-budget
findings (the report reads only the study's files, and says which trials still run).

Each build runs in a child process (python -m reports.build), so its minutes of CPU at a large study never hold the
driver's loop, and one at a time: the next starts MINUTES after the last one ended. A build that fails is said and
the study goes on; the study's own final report is built after the last one has stopped.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from study.study_dir import StudyLocation

ROOT = Path(__file__).resolve().parents[1]


class LiveReport:
    def __init__(self, location: StudyLocation, minutes: float | None, echo: Callable[[str], None]):
        self.location, self.minutes, self.echo = location, minutes, echo
        self.stopping = threading.Event()
        self.child: subprocess.Popen | None = None
        self.thread = threading.Thread(target=self._loop, name="live-report", daemon=True)

    def __enter__(self) -> LiveReport:
        if self.minutes:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        child = self.child
        if child is not None and child.poll() is None:
            child.terminate()  # the final report supersedes it
        if self.thread.is_alive():
            self.thread.join()

    def _loop(self) -> None:
        while not self.stopping.wait(self.minutes * 60):
            if self.location.root.is_dir():
                self.build()

    def build(self) -> None:
        began = time.monotonic()
        self.child = subprocess.Popen([sys.executable, "-m", "reports.build", str(self.location.root)], cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, err = self.child.communicate()
        if self.stopping.is_set():
            return
        if self.child.returncode != 0:
            last = (err.strip().splitlines() or ["no message"])[-1]
            self.echo(f"live report: the build failed ({last}); the study goes on")
            return
        report = self.location.root / "report"
        self.location.push(report)
        self.echo(f"live report rebuilt: {report / 'index.html'} ({time.monotonic() - began:.0f} s)")
