"""The report steps' warm helper process as a Dagster resource (``btc_lifecycle.warmup``)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import dagster as dg
from pydantic import Field, PrivateAttr

from btc_lifecycle import warmup

T = TypeVar("T")


class ReportWorkerResource(dg.ConfigurableResource):
    """Builds the ingestion and drift reports, and does Feast's online materialization and parity
    check, in a helper process warmed up while the run's first steps work: kaleido's Chromium
    started, plotly, weasyprint, evidently and Feast imported.

    Dagster sets a run's resources up before its first step, so the helper starts then, and only
    in a run that has a report step (a resource no step asks for is never set up). It warms up for
    the report steps the run targets and is closed when the run's steps are done. ``run`` falls
    back to this process when there is no helper (``enabled=False``, or it died).
    """

    enabled: bool = Field(default=True, description="Start the warm helper process (else build here).")
    _helper: warmup.WarmHelper | None = PrivateAttr(default=None)
    _imports_meanwhile: tuple[str, ...] = PrivateAttr(default=())

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if not self.enabled:
            return
        steps = _targeted_steps(context.dagster_run)
        warmups = warmup.warmups_for(steps)
        if not warmups or _already_warm(warmups):
            return
        self._imports_meanwhile = warmup.warmups_for(steps, warmup.IN_PROCESS_WARMUPS)
        try:
            self._helper = warmup.WarmHelper(warmups)
        except OSError as error:  # no helper: the reports are built in the step's process
            context.log.warning(f"the report worker did not start ({error}); reports are built in the step")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._helper is not None:
            self._helper.close()
            self._helper = None

    def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` in the warm helper, or here without one.

        While the first call waits for the helper, this process imports what the run's later
        in-process steps need (``warmup.IN_PROCESS_WARMUPS``); the call returns once both are
        done, so the step's own code never runs beside those imports.
        """
        pending = [m for m in self._imports_meanwhile if m not in sys.modules]
        self._imports_meanwhile = ()
        if not pending or self._helper is None or not self._helper.alive:
            return warmup.run_in(self._helper, function, *args, **kwargs)
        importer = threading.Thread(target=warmup.import_quietly, args=(pending,), name="imports-meanwhile")
        importer.start()
        try:
            return warmup.run_in(self._helper, function, *args, **kwargs)
        finally:
            importer.join()


def _targeted_steps(run: dg.DagsterRun | None) -> list[str]:
    """The steps (asset names) a run executes, as far as its record says; unknown: every report."""
    if run is not None and run.step_keys_to_execute:
        return list(run.step_keys_to_execute)
    if run is not None and run.asset_selection:
        return [key.to_user_string() for key in run.asset_selection]
    return list(warmup.WARMUPS)


def _already_warm(warmups: tuple[str, ...]) -> bool:
    """Whether this process has loaded everything the helper would (a long-lived process running
    many runs in process, as the replayed month does): a helper would only pay the imports again."""
    return all(item.partition(":")[0] in sys.modules for item in warmups)
