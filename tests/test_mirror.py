"""Copies to a storage URI (file:// here, a real pyarrow filesystem): a failing copy is retried with back-off and,
when it keeps failing, logged and reported, never raised, so a storage hiccup does not end a study."""

from __future__ import annotations

import logging
import threading

from study import mirror
from study.mirror import Mirror


def _local_study(tmp_path):
    local = tmp_path / "local"
    (local / "trials.parquet").mkdir(parents=True)
    (local / "trials.parquet" / "t1.parquet").write_bytes(b"rows")
    (local / "study.json").write_text("{}")
    return local


def test_a_copy_that_fails_for_a_moment_is_retried_until_it_lands(tmp_path, monkeypatch):
    monkeypatch.setattr(mirror, "FIRST_BACKOFF_S", 0.2)  # attempts at about 0, 0.2, 0.6 and 1.4 s
    local, bucket = _local_study(tmp_path), tmp_path / "bucket"
    bucket.write_text("a file where the study's folder must go")  # every copy fails while it is there
    threading.Timer(0.4, bucket.unlink).start()
    assert Mirror(local, f"file://{bucket}").push(local / "study.json", local / "trials.parquet")
    assert (bucket / "study.json").read_text() == "{}"
    assert (bucket / "trials.parquet" / "t1.parquet").read_bytes() == b"rows"


def test_a_copy_that_keeps_failing_is_logged_and_reported_not_raised(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(mirror, "FIRST_BACKOFF_S", 0.01)
    local, bucket = _local_study(tmp_path), tmp_path / "bucket"
    bucket.write_text("in the way for good")
    with caplog.at_level(logging.WARNING, logger="study.mirror"):
        assert not Mirror(local, f"file://{bucket}").push(local / "study.json")
    assert f"could not copy {local / 'study.json'} to file://{bucket} after {mirror.PUSH_ATTEMPTS} attempts" in \
        caplog.text
