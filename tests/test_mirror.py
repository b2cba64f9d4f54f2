"""Copies to a storage URI (file:// here, a real pyarrow filesystem): ``push`` never waits for the storage, a
failing copy is logged and retried until it lands, ``flush`` says whether everything marked has landed, and a file
removed locally is removed there too."""

from __future__ import annotations

import logging
import time

from study import mirror
from study.mirror import Mirror

PATIENCE_S = 120  # generous: the copier runs on a busy machine


def _local_study(tmp_path):
    local = tmp_path / "local"
    (local / "trials.parquet").mkdir(parents=True)
    (local / "trials.parquet" / "t1.parquet").write_bytes(b"rows")
    (local / "study.json").write_text("{}")
    return local


def _until(condition) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        assert time.monotonic() < deadline, "the copier did not get there"
        time.sleep(0.02)


def test_push_returns_while_the_storage_fails_and_the_copy_lands_once_it_is_back(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(mirror, "FIRST_BACKOFF_S", 0.01)
    monkeypatch.setattr(mirror, "MAX_BACKOFF_S", 0.05)
    local, bucket = _local_study(tmp_path), tmp_path / "bucket"
    bucket.write_text("a file where the study's folder must go")  # every copy fails while it is there
    copies = Mirror(local, f"file://{bucket}")
    with caplog.at_level(logging.WARNING, logger="stgcn.mirror"):
        copies.push(local / "study.json", local / "trials.parquet")  # returns although nothing can land
        _until(lambda: local / "study.json" in copies.failing)
        assert not copies.flush(timeout_s=0.05)
        assert f"could not copy {local / 'study.json'} to file://{bucket}" in caplog.text
        (local / "study.json").write_text('{"status": "finished"}')  # changed while it waits: copied as it is now
        copies.push(local / "study.json")
        bucket.unlink()
        assert copies.flush(timeout_s=PATIENCE_S)
    assert (bucket / "study.json").read_text() == '{"status": "finished"}'
    assert (bucket / "trials.parquet" / "t1.parquet").read_bytes() == b"rows"
    assert copies.failing == {}
    assert "after earlier failures" in caplog.text


def test_a_file_removed_locally_is_removed_from_the_storage(tmp_path):
    local, bucket = _local_study(tmp_path), tmp_path / "bucket"
    copies = Mirror(local, f"file://{bucket}")
    copies.push(local / "trials.parquet")
    assert copies.flush(timeout_s=PATIENCE_S)
    assert (bucket / "trials.parquet" / "t1.parquet").exists()
    (local / "trials.parquet" / "t1.parquet").unlink()
    copies.push(local / "trials.parquet" / "t1.parquet")
    assert copies.flush(timeout_s=PATIENCE_S)
    assert not (bucket / "trials.parquet" / "t1.parquet").exists()


def test_one_copier_per_study_and_process(tmp_path):
    local = _local_study(tmp_path)
    assert Mirror.of(local, f"file://{tmp_path}/b/") is Mirror.of(local, f"file://{tmp_path}/b")


def test_a_copy_to_a_filesystem_replaces_the_file_whole_and_leaves_nothing_beside_it(tmp_path):
    """Written beside the target and renamed onto it: a reader of the storage never meets a half-copied file."""
    local, bucket = _local_study(tmp_path), tmp_path / "bucket"
    (bucket / "trials.parquet").mkdir(parents=True)
    (bucket / "trials.parquet" / "t1.parquet").write_bytes(b"an older version of the rows")
    copies = Mirror(local, f"file://{bucket}")
    copies.push(local / "trials.parquet", local / "study.json")
    assert copies.flush(timeout_s=PATIENCE_S)
    assert sorted(p.name for p in bucket.rglob("*")) == ["study.json", "t1.parquet", "trials.parquet"]
    assert (bucket / "trials.parquet" / "t1.parquet").read_bytes() == b"rows"
