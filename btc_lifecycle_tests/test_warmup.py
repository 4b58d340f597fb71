"""The warm helper process and the executor that keeps one for a run's report steps."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from btc_lifecycle import warmup
from btc_lifecycle.monitoring import MonitoringConfig, write_drift_report
from btc_lifecycle.monitoring.report import write_drift_report_without_snapshot
from btc_lifecycle.reporting import ReportFacts, build_ingestion_report
from btc_lifecycle.resources import ReportWorkerResource
from btc_lifecycle_tests.monitoring.conftest import feature_window
from btc_lifecycle_tests.reporting.conftest import seeded_labeled_candles

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


def sleep_long() -> None:
    """A warm-up that never ends by itself: marks its start in $WARMUP_TEST_MARKER."""
    Path(os.environ["WARMUP_TEST_MARKER"]).write_text("warming")
    time.sleep(600)


RECORDED: list[str] = []


def record(text: str) -> str:
    RECORDED.append(text)
    return text


CALL_RUNNING, CALL_GATE = threading.Event(), threading.Event()


def record_when_let_through(text: str) -> str:
    """A call that runs until the test lets it through (a report being built)."""
    CALL_RUNNING.set()
    assert CALL_GATE.wait(timeout=60)
    return record(text)


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


def test_a_call_arriving_in_the_middle_of_a_warmup_is_answered_before_that_warmup_ends(monkeypatch):
    RECORDED.clear()
    CALL_RUNNING.clear()
    CALL_GATE.clear()
    slow_started, slow_gate, slow_done = threading.Event(), threading.Event(), threading.Event()
    next_warmed = threading.Event()

    def warm(item):  # "slow" stands for a long import (Feast's, evidently's)
        RECORDED.append(f"warm {item}")
        if item == "next":
            next_warmed.set()
        if item == "slow":
            slow_started.set()
            assert slow_gate.wait(timeout=60)
            slow_done.set()

    monkeypatch.setattr(warmup, "warm", warm)
    requests_out, requests = multiprocessing.Pipe(duplex=False)
    replies, replies_in = multiprocessing.Pipe(duplex=False)
    server = threading.Thread(target=warmup.serve, args=(requests_out, replies_in, ["slow", "next"]), daemon=True)
    server.start()
    assert slow_started.wait(timeout=60)
    requests.send((__name__, "record", ("first call",), {}))
    assert replies.poll(timeout=60), "the call waited for the warm-up"
    assert replies.recv() == ("ok", "first call", "")
    # No warm-up starts while a call runs: the slow one ends while this call is held.
    requests.send((__name__, "record_when_let_through", ("second call",), {}))
    assert CALL_RUNNING.wait(timeout=60)
    slow_gate.set()
    assert slow_done.wait(timeout=60)
    CALL_GATE.set()
    assert replies.recv() == ("ok", "second call", "")
    assert next_warmed.wait(timeout=60)
    requests.close()
    server.join(timeout=60)
    assert not server.is_alive()
    assert RECORDED == ["warm slow", "first call", "second call", "warm next"]


def test_an_exception_in_the_helper_is_raised_here_as_itself(helper):
    with pytest.raises(KeyError, match="no such thing") as raised:
        helper.call(fails, "no such thing")
    assert any("warm helper process" in note for note in raised.value.__notes__)
    with pytest.raises(warmup.RemoteError, match="pickle"):
        helper.call(unpicklable_result)
    assert helper.call(process_id) == helper.process.pid  # still answering


def test_closing_ends_the_helper_and_later_calls_run_here():
    helper = warmup.WarmHelper(warmup.warmups_for(["drift_report"]))
    try:
        assert helper.alive
        assert warmup.run_in(helper, process_id) == helper.process.pid
    finally:
        helper.close()
    assert helper.process.returncode == 0
    with pytest.raises(warmup.HelperUnavailable):
        helper.call(process_id)
    assert warmup.run_in(helper, process_id) == os.getpid()
    assert warmup.run_in(None, process_id) == os.getpid()


def test_a_helper_stopped_in_the_middle_of_a_warmup_exits_at_once_and_cleanly(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    monkeypatch.setenv("WARMUP_TEST_MARKER", str(marker))
    helper = warmup.WarmHelper([f"{__name__}:sleep_long"])
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "warming"
    helper.close()
    assert helper.process.returncode == 0  # its SIGTERM handler, not the kill after the timeout


def test_a_dead_helper_is_dropped_and_the_call_runs_here():
    helper = warmup.WarmHelper(warmup.warmups_for(["drift_report"]))
    try:
        helper.process.kill()
        helper.process.wait()
        assert warmup.run_in(helper, process_id) == os.getpid()
        assert not helper.alive
    finally:
        helper.close()


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
    helper = warmup.WarmHelper(warmup.warmups_for(["drift_report"]))
    try:
        remote = warmup.run_in(
            helper, write_drift_report_without_snapshot, reference, current, tmp_path / "helper", NOW, config, **options
        )
        built_by = helper.call(process_id)
    finally:
        helper.close()
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
    local = build_ingestion_report(labeled, facts, tmp_path / "here", keep_last=1, now=NOW)
    helper = warmup.WarmHelper(warmup.warmups_for(["ingestion_report"]))
    try:
        remote = warmup.run_in(
            helper, build_ingestion_report, labeled, facts, tmp_path / "helper", keep_last=1, now=NOW
        )
        drawn_there = helper.call(is_imported, "kaleido")
    finally:
        helper.close()
    assert drawn_there
    assert remote.pdf_path == tmp_path / "helper" / "ingestion" / local.folder.name / "report.pdf"
    assert remote.pdf_path.read_bytes()[:5] == b"%PDF-"
    assert remote.page_count == local.page_count
    assert remote.markdown_summary == local.markdown_summary.replace(str(tmp_path / "here"), str(tmp_path / "helper"))
    assert [path.name for path in remote.image_paths] == [path.name for path in local.image_paths]


# Assets whose keys are (or are not) report steps, each asking the worker where it runs.
@dg.asset(name="ingestion_report")
def report_step(report_worker: ReportWorkerResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"step_pid": os.getpid(), "built_by": report_worker.run(process_id)})


@dg.asset(name="model")
def other_step(report_worker: ReportWorkerResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"step_pid": os.getpid(), "built_by": report_worker.run(process_id)})


def pids(result: dg.ExecuteInProcessResult, asset: str) -> tuple[int, int]:
    [event] = result.asset_materializations_for_node(asset)
    return event.metadata["step_pid"].value, event.metadata["built_by"].value


@pytest.fixture
def cold_process(monkeypatch):
    """This process as a fresh run's: none of the report modules loaded (other tests load them)."""
    for item in warmup.warmups_for(list(warmup.WARMUPS)):
        monkeypatch.delitem(sys.modules, item.partition(":")[0], raising=False)


def test_a_run_with_a_report_step_builds_it_in_the_warm_helper(cold_process):
    result = dg.materialize([report_step], resources={"report_worker": ReportWorkerResource()})
    step_pid, built_by = pids(result, "ingestion_report")
    assert step_pid == os.getpid()  # the step itself runs in the run's process
    assert built_by != step_pid  # the work ran in the helper


def test_a_run_that_targets_no_report_step_starts_no_helper():
    # The run's asset selection names its steps (a run without one warms up for both reports).
    result = dg.materialize(
        [report_step, other_step], selection=[other_step], resources={"report_worker": ReportWorkerResource()}
    )
    step_pid, built_by = pids(result, "model")
    assert built_by == step_pid


def test_a_disabled_worker_builds_in_the_step():
    result = dg.materialize([report_step], resources={"report_worker": ReportWorkerResource(enabled=False)})
    step_pid, built_by = pids(result, "ingestion_report")
    assert built_by == step_pid


def test_the_helper_is_closed_when_the_run_ends(cold_process):
    worker = ReportWorkerResource()
    helpers = []
    original = warmup.WarmHelper.__init__

    def remembered(self, warmups):
        original(self, warmups)
        helpers.append(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(warmup.WarmHelper, "__init__", remembered)
        dg.materialize([report_step], resources={"report_worker": worker})
    [helper] = helpers
    assert not helper.alive
    assert helper.process.returncode is not None  # the process is gone, not left behind


def test_a_process_that_already_loaded_what_the_helper_would_starts_none(monkeypatch):
    for item in warmup.warmups_for(["ingestion_report"]):
        monkeypatch.setitem(sys.modules, item.partition(":")[0], sys.modules[__name__])
    result = dg.materialize([report_step], resources={"report_worker": ReportWorkerResource()})
    step_pid, built_by = pids(result, "ingestion_report")
    assert built_by == step_pid


def imported_when_the_report_step_ended(module: str, worker: ReportWorkerResource) -> bool:
    """Run a report step and a model step after it; whether ``module`` was imported in this
    process by the time the report step returned."""
    imported = {}

    @dg.asset(name="ingestion_report")
    def report(report_worker: ReportWorkerResource) -> None:
        report_worker.run(process_id)
        imported["then"] = module in sys.modules

    @dg.asset(name="model", deps=[report])
    def model() -> None:
        pass

    dg.materialize([report, model], resources={"report_worker": worker})
    return imported["then"]


def test_while_a_report_step_waits_for_the_helper_the_run_imports_what_its_later_steps_need(cold_process, monkeypatch):
    """The model step comes after the ingestion report in the same process: its imports are done
    while the report step waits for the helper, and are finished when that step returns (and a
    module that does not exist breaks nothing)."""
    monkeypatch.setitem(warmup.IN_PROCESS_WARMUPS, "model", ("wave", "no_such_module_for_the_model"))
    monkeypatch.delitem(sys.modules, "wave", raising=False)
    assert imported_when_the_report_step_ended("wave", ReportWorkerResource())


def test_without_a_helper_nothing_is_imported_ahead(monkeypatch):
    monkeypatch.setitem(warmup.IN_PROCESS_WARMUPS, "model", ("wave",))
    monkeypatch.delitem(sys.modules, "wave", raising=False)
    assert not imported_when_the_report_step_ended("wave", ReportWorkerResource(enabled=False))


def test_in_process_warmups_name_modules_of_the_project_that_import():
    for module in warmup.warmups_for(list(warmup.IN_PROCESS_WARMUPS), warmup.IN_PROCESS_WARMUPS):
        assert importlib.util.find_spec(module) is not None, module
