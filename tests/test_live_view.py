"""The live view, on the session's smoke study: python -m study.watch (one optuna-dashboard server per subset's
journal, serving that subset's trials as the tables record them) and --report-every (the report rebuilt while the
study runs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

from study.live_report import LiveReport
from study.run import main as run_main
from study.study_dir import StudyLocation
from study.watch import main

ROOT = Path(__file__).resolve().parents[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def test_watch_serves_each_subsets_trials_on_its_own_dashboard(smoke):
    root, trials = smoke
    watch = subprocess.Popen([sys.executable, "-m", "study.watch", str(root), "--port", "0"], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        urls = dict(watch.stdout.readline().strip().split(": ", 1) for _ in range(2))
        assert set(urls) == {"kinetics-motion", "kinetics-392"}
        for subset, url in urls.items():
            assert url.endswith("/dashboard/")
            api = url.removesuffix("dashboard/") + "api/"
            (study,) = _get(api + "studies")["study_summaries"]
            assert study["study_name"] == subset
            served = _get(api + f"studies/{study['study_id']}?after=0")["trials"]
            searched = trials[(trials["subset"] == subset) & trials["repeat_of"].isna()]
            assert sorted(t["number"] for t in served) == sorted(searched["optuna_number"].astype(int))
            states = {"completed": "Complete", "stopped_by_asha": "Pruned", "diverged": "Fail", "errored": "Fail"}
            by_number = {t["number"]: t["state"] for t in served}
            assert all(by_number[int(row["optuna_number"])] == states[row["stop_reason"]]
                       for _, row in searched.iterrows())
    finally:
        watch.terminate()
        watch.wait(60)


def test_watch_of_a_folder_that_is_not_a_study_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "nothing")]) == 2
    assert "no study here (study.json missing)" in capsys.readouterr().err
    (tmp_path / "early").mkdir()
    (tmp_path / "early" / "study.json").write_text("{}")
    assert main(["early", "--storage", str(tmp_path)]) == 2
    assert "no Optuna journal yet" in capsys.readouterr().err


def test_the_report_is_rebuilt_at_its_interval_while_the_study_runs(smoke, tmp_path):
    root, _ = smoke
    study = tmp_path / root.name
    shutil.copytree(root, study, ignore=shutil.ignore_patterns("report", "search", "seeds"))
    said, rebuilt = [], threading.Event()
    with LiveReport(StudyLocation(tmp_path, root.name), 0.005, lambda line: (said.append(line), rebuilt.set())):
        assert rebuilt.wait(600), "no rebuild within 10 minutes"
    assert said[0].startswith(f"live report rebuilt: {study / 'report' / 'index.html'}")
    summary = json.loads((study / "report" / "summary.json").read_text())
    assert summary["study"]["name"] == root.name and summary["tables"]["learning"]["rows"]


def test_report_every_must_be_a_positive_number_of_minutes(capsys):
    assert run_main(["--space", "smoke", "--report-every", "0"]) == 2
    assert "--report-every 0.0: give a number of minutes above 0" in capsys.readouterr().err


def test_every_trial_has_the_tensorboard_events_the_readme_points_to(smoke):
    root, trials = smoke
    searched = trials[trials["repeat_of"].isna()]
    with_events = {path.parent.name.rsplit("_", 1)[-1] for path in (root / "search").glob("*/events.out.tfevents.*")}
    assert set(searched["trial_id"]) <= with_events


def test_each_subsets_journal_names_its_objective_and_kinetics_motion_gets_the_first_port(smoke):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from study.watch import journals
    root, _ = smoke
    found = journals(root)
    assert list(found) == ["kinetics-motion", "kinetics-392"]  # --port, then --port + 1, as docs/running.md says
    for subset, journal in found.items():
        study = optuna.load_study(study_name=subset, storage=JournalStorage(JournalFileBackend(str(journal))))
        assert study.metric_names == ["val_top1"]
