"""The warm helper process and the executor that keeps one for a run's report steps."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import threading
from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pytest

from btc_lifecycle import warmup
from btc_lifecycle.execution import warm_in_process_executor
from btc_lifecycle.monitoring import MonitoringConfig, write_drift_report
from btc_lifecycle.reporting import ReportFacts, build_ingestion_report
from btc_lifecycle.reporting.ingestion_report import write_ingestion_report
from btc_lifecycle_tests.test_monitoring.conftest import feature_window
from btc_lifecycle_tests.test_reporting.conftest import seeded_labeled_candles

NOW = datetime(2024, 1, 6, 3, 0, tzinfo=UTC)


# Called in the helper by module and name: module-level, importable from there.
def process_id() -> int:
    return os.getpid()


def is_imported(module: str) -> bool:
    return module in sys.modules


def fails(message: str) -> None:
    raise KeyError(message)


def unpicklable_result():
    return lambda: None


RECORDED: list[str] = []


def record(text: str) -> str:
    RECORDED.append(text)
    return text


@pytest.fixture
def helper():
    started = warmup.WarmHelper(["colorsys"])
    yield started
    started.close()


def test_warmups_follow_the_report_steps_of_the_run():
    both = warmup.warmups_for(["raw_candles", "model", "ingestion_report", "drift_report"])
    assert "btc_lifecycle.reporting.charts:start_kaleido" in both
    assert "evidently" in both
    assert both.index("weasyprint") < both.index("evidently")  # in the order the steps come
    assert "evidently" not in warmup.warmups_for(["ingestion_report"])
    assert warmup.warmups_for(["raw_candles", "labeled_candles", "model"]) == ()
    assert warmup.start(["raw_candles", "model"]) is None  # nothing to warm: no helper
    assert warmup.current() is None


def test_a_call_runs_in_the_helper(helper):
    assert helper.call(process_id) not in (os.getpid(), None)
    assert helper.call(process_id) == helper.process.pid
    assert helper.call(is_imported, "this_module_was_never_imported") is False


def serve_in_thread(warmups, monkeypatch, before_start=()):
    """``warmup.serve`` in a thread over in-process pipes, with warm-ups recorded, not done."""
    RECORDED.clear()
    done, order, last_warmed = [], RECORDED, threading.Event()

    def fake_warm(item):
        order.append(f"warm {item}")
        if item == warmups[-1]:
            last_warmed.set()

    monkeypatch.setattr(warmup, "warm", fake_warm)
    requests_out, requests_in = multiprocessing.Pipe(duplex=False)
    replies_out, replies_in = multiprocessing.Pipe(duplex=False)
    for request in before_start:
        requests_in.send(request)
    server = threading.Thread(target=lambda: done.append(warmup.serve(requests_out, replies_in, warmups)))
    server.start()
    return server, requests_in, replies_out, order, last_warmed, done


def test_the_helper_warms_up_in_order_then_answers(monkeypatch):
    server, requests, replies, order, last_warmed, done = serve_in_thread(["a", "b:c"], monkeypatch)
    assert last_warmed.wait(timeout=60)
    requests.send((__name__, "record", ("call",), {}))
    assert replies.recv() == ("ok", "call", "")
    requests.close()
    server.join(timeout=60)
    assert done == [None] and order == ["warm a", "warm b:c", "call"]


def test_a_call_waiting_when_the_helper_starts_is_answered_before_the_warmups(monkeypatch):
    request = (__name__, "record", ("early",), {})
    server, requests, replies, order, last_warmed, _ = serve_in_thread(["a", "b"], monkeypatch, [request])
    assert replies.recv() == ("ok", "early", "")
    assert last_warmed.wait(timeout=60)
    requests.close()
    server.join(timeout=60)
    assert order == ["early", "warm a", "warm b"]


def test_an_exception_in_the_helper_is_raised_here_as_itself(helper):
    with pytest.raises(KeyError, match="no such thing") as raised:
        helper.call(fails, "no such thing")
    assert any("warm helper process" in note for note in raised.value.__notes__)
    with pytest.raises(warmup.RemoteError, match="pickle"):
        helper.call(unpicklable_result)
    assert helper.call(is_imported, "colorsys") is True  # still answering


def test_closing_ends_the_helper_and_later_calls_run_here():
    helper = warmup.start(["drift_report"])
    try:
        assert warmup.current() is helper and helper.alive
        assert warmup.call(process_id) == helper.process.pid
    finally:
        warmup.stop(helper)
    assert warmup.current() is None
    assert helper.process.returncode == 0
    with pytest.raises(warmup.HelperUnavailable):
        helper.call(process_id)
    assert warmup.call(process_id) == os.getpid()


def test_a_dead_helper_is_dropped_and_the_call_runs_here():
    helper = warmup.start(["drift_report"])
    try:
        helper.process.kill()
        helper.process.wait()
        assert warmup.call(process_id) == os.getpid()
        assert not helper.alive
    finally:
        warmup.stop(helper)


def test_a_warmup_imports_a_module_or_calls_a_function(monkeypatch):
    calls = []
    monkeypatch.setattr(sys.modules[__name__], "process_id", lambda: calls.append("called"), raising=True)
    warmup.warm(f"{__name__}:process_id")
    assert calls == ["called"]
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    warmup.warm("colorsys")
    assert "colorsys" in sys.modules


def test_the_drift_report_built_in_the_helper_is_the_one_built_here(tmp_path):
    reference, current = feature_window(seed=101, count=1_500), feature_window(seed=303, start="2024-01-05T00:00:00Z")
    config = MonitoringConfig(min_realized_labels=1_000)
    rng = np.random.default_rng(1)
    options = {
        "reference_predictions": rng.uniform(0.4, 0.6, len(reference)),
        "current_predictions": rng.uniform(0.4, 0.6, len(current)),
    }
    local = write_drift_report(reference, current, tmp_path / "here", NOW, config, **options)
    helper = warmup.start(["drift_report"])
    try:
        remote = write_drift_report(reference, current, tmp_path / "helper", NOW, config, **options)
        built_by = helper.call(process_id)
    finally:
        warmup.stop(helper)
    assert built_by != os.getpid()
    assert remote.folder == tmp_path / "helper" / "drift" / local.folder.name
    assert sorted(path.name for path in remote.folder.iterdir()) == sorted(path.name for path in local.folder.iterdir())
    assert json.loads(remote.json_path.read_text()) == json.loads(local.json_path.read_text())
    assert remote.headline == local.headline
    assert remote.drift.per_column == local.drift.per_column
    assert remote.drift.drift_share == local.drift.drift_share
    assert local.drift.snapshot is not None and remote.drift.snapshot is None  # its files are written


def test_the_ingestion_report_built_in_the_helper_is_the_one_built_here(tmp_path):
    labeled = seeded_labeled_candles()
    facts = ReportFacts(
        source="test",
        symbol="BTC/USDT",
        interval="1m",
        rows_new=1,
        rows_total=len(labeled),
        missing_minutes=0,
        gaps=[],
        generated_at=NOW,
    )
    local = write_ingestion_report(labeled, facts, tmp_path / "here", keep_last=1, now=NOW)
    helper = warmup.start(["ingestion_report"])
    try:
        remote = build_ingestion_report(labeled, facts, tmp_path / "helper", keep_last=1, now=NOW)
        drawn_there = helper.call(is_imported, "kaleido")
    finally:
        warmup.stop(helper)
    assert drawn_there
    assert remote.pdf_path == tmp_path / "helper" / "ingestion" / local.folder.name / "report.pdf"
    assert remote.pdf_path.read_bytes()[:5] == b"%PDF-"
    assert remote.page_count == local.page_count
    assert remote.markdown_summary == local.markdown_summary.replace(str(tmp_path / "here"), str(tmp_path / "helper"))
    assert [path.name for path in remote.image_paths] == [path.name for path in local.image_paths]


# A job whose op names match the report steps, run by the warm executor.
@dg.op
def ingestion_report() -> dict:
    helper = warmup.current()
    return {
        "step_pid": os.getpid(),
        "helper_pid": helper.process.pid if helper is not None else None,
        "helper_pid_by_call": warmup.call(process_id),
    }


@dg.job(executor_def=warm_in_process_executor)
def warm_job():
    ingestion_report()


@dg.op
def plain_step() -> bool:
    return warmup.current() is None


@dg.job(executor_def=warm_in_process_executor)
def job_without_report_steps():
    plain_step()


def test_the_executor_runs_steps_here_and_keeps_a_helper_for_the_run(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        with dg.execute_job(dg.reconstructable(warm_job), instance=instance) as result:
            assert result.success
            seen = result.output_for_node("ingestion_report")
        with dg.execute_job(dg.reconstructable(job_without_report_steps), instance=instance) as result:
            assert result.success and result.output_for_node("plain_step") is True
    assert seen["step_pid"] == os.getpid()  # in process, as dg.in_process_executor
    assert seen["helper_pid"] is not None and seen["helper_pid_by_call"] == seen["helper_pid"] != os.getpid()
    assert warmup.current() is None  # closed with the run
    with pytest.raises(ProcessLookupError):
        os.kill(seen["helper_pid"], 0)


def test_the_executor_takes_the_in_process_executors_configuration():
    assert warm_in_process_executor.config_schema.config_type.fields.keys() == (
        dg.in_process_executor.config_schema.config_type.fields.keys()
    )
