"""A replayed month: the real automation and sensor, ticked through a candle file at accelerated time.

``python -m btc_lifecycle.simulation --candles FILE`` serves FILE from a replay exchange whose
clock starts ``--warmup-days`` in, trains the first champion, then advances the clock
``--tick-hours`` at a time. At each tick it evaluates the ingestion and monitoring schedules and
then the retraining sensor exactly as the daemon would, runs what they request in process, and
prints the timeline as it goes (each ingest, drift evaluation, retraining and promotion
decision), then a summary. The ingestion schedule's run covers yesterday and today, so one run
per tick stands for all the routine's ticks since the previous one.

Its Dagster instance, feature store, reports and MLflow store stay in ``--state`` (by default
``data/simulations/<UTC stamp>/``) with ``timeline.json`` and ``timeline.csv`` beside them, so
the month can be opened afterwards in the Dagster UI (``make dev SIMULATION=DIR``) and the
MLflow UI (``make mlflow-ui SIMULATION=DIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from btc_lifecycle.config import PROJECT_ROOT, load_settings
from btc_lifecycle.definitions import build_definitions
from btc_lifecycle.defs.monitoring.sensors import COOL_DOWN
from btc_lifecycle.domain.candle_files import read_candle_file
from btc_lifecycle.replay_exchange import ReplayExchange

SIMULATIONS_DIR = PROJECT_ROOT / "data" / "simulations"
# What the first run materializes: the graph but Feast's export and online store, which nothing
# the replay follows (training, scoring, drift, retraining) reads.
BOOTSTRAP_ASSETS = (
    "raw_candles",
    "labeled_candles",
    "ingestion_stats",
    "ingestion_report",
    "features",
    "model",
    "backtest",
    "predictions",
    "drift_report",
)


# The runs' own event logs stay in the instance; the console gets warnings and the timeline.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class Timeline:
    """What happened, in simulated time."""

    events: list[dict] = field(default_factory=list)
    echo: bool = False  # print each event as it happens

    def add(self, at: pd.Timestamp, kind: str, **facts) -> None:
        self.events.append({"at": at, "kind": kind, **facts})
        if self.echo:
            print(self._line(self.events[-1]), flush=True)

    def of_kind(self, kind: str) -> list[dict]:
        return [event for event in self.events if event["kind"] == kind]

    def write(self, folder: Path) -> tuple[Path, Path]:
        """``timeline.json`` (one object per event) and ``timeline.csv`` (one row per event)."""
        rows = [{**event, "at": event["at"].isoformat()} for event in self.events]
        json_path, csv_path = folder / "timeline.json", folder / "timeline.csv"
        json_path.write_text(json.dumps(rows, indent=1, default=str), encoding="utf-8")
        pd.DataFrame(rows).to_csv(csv_path, index=False)
        return json_path, csv_path

    @staticmethod
    def _line(event: dict) -> str:
        facts = "  ".join(f"{key}={value}" for key, value in event.items() if key not in ("at", "kind"))
        return f"{event['at']:%Y-%m-%d %H:%M}  {event['kind']:<10} {facts}"


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == asset:
            return {key: value.value for key, value in event.materialization.metadata.items()}
    return {}


def _check_evaluations(result: dg.ExecuteInProcessResult) -> list:
    return [
        event.event_specific_data for event in result.all_events if event.event_type_value == "ASSET_CHECK_EVALUATION"
    ]


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, bool | None]:
    """Each check's verdict: True, False, or None when it passed only because it was skipped."""
    return {
        evaluation.check_name: None
        if evaluation.metadata.get("skipped") and evaluation.metadata["skipped"].value
        else evaluation.passed
        for evaluation in _check_evaluations(result)
    }


def _check_descriptions(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    return {evaluation.check_name: evaluation.description or "" for evaluation in _check_evaluations(result)}


def _verdict(passed: bool | None) -> str:
    return "skip" if passed is None else "pass" if passed else "FAIL"


def _rounded(value: float, digits: int) -> float | None:
    return None if value != value else round(value, digits)  # NaN: not measured


class Simulation:
    """The code location's own definitions, against a replay clock and a private state folder."""

    def __init__(self, candles: pd.DataFrame, candle_file: Path, state: Path, start: pd.Timestamp, echo: bool = False):
        self.exchange = ReplayExchange(candles, start=start, speed=0)
        self.state = state
        self.candle_file = candle_file
        self.timeline = Timeline(echo=echo)

    def __enter__(self) -> Simulation:
        url = self.exchange.start()
        settings = load_settings(
            {
                **os.environ,
                "BINANCE_API_URL": url,
                "REPLAY_CANDLES": str(self.candle_file),
                "INGEST_BACKFILL_DAYS": "all",
                "FEATURE_DB_PATH": str(self.state / "feature_store" / "bitcoin.duckdb"),
                "BTC_REPORT_DIR": str(self.state / "reports"),
                "MLFLOW_TRACKING_URI": f"sqlite:///{self.state / 'mlflow' / 'mlflow.db'}",
            }
        )
        self.defs = build_definitions(settings)
        home = self.state / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        # The project's instance settings (the DuckDB pool), so `make dev SIMULATION=` opens it as is.
        shutil.copyfile(PROJECT_ROOT / "config" / "dagster.yaml", home / "dagster.yaml")
        (self.state / "simulation.json").write_text(
            json.dumps(
                {
                    "candles": str(self.candle_file),
                    "feature_db_path": str(settings.feature_db_path),
                    "report_dir": str(settings.report_dir),
                    "mlflow_tracking_uri": settings.mlflow_tracking_uri,
                    "dagster_home": str(home),
                },
                indent=1,
            ),
            encoding="utf-8",
        )
        # Entered, not just built: resolving the definitions reads the *current* instance's state
        # storage, which must be this live one, not one an earlier caller already disposed.
        self.instance = dg.DagsterInstance.local_temp(str(home)).__enter__()
        self.sensor_cursor: str | None = None
        return self

    def __exit__(self, *exc_info) -> None:
        self.instance.__exit__(*exc_info)
        self.exchange.stop()

    @property
    def now(self) -> pd.Timestamp:
        return pd.Timestamp(self.exchange.clock.now_ms(), unit="ms", tz="UTC")

    def advance_to(self, moment: pd.Timestamp) -> None:
        self.exchange.clock.set_now(int(moment.timestamp() * 1000))

    def _materialize(
        self, assets: tuple[str, ...], days: tuple[pd.Timestamp, pd.Timestamp] | None = None, tags=None
    ) -> dg.ExecuteInProcessResult:
        """The assets in one run, as the CLI or the automation sensor would launch it; the daily
        ones over ``days`` (first, last)."""
        job = self.defs.resolve_implicit_global_asset_job_def()
        range_tags = (
            {
                "dagster/asset_partition_range_start": f"{days[0]:%Y-%m-%d}",
                "dagster/asset_partition_range_end": f"{days[1]:%Y-%m-%d}",
            }
            if days
            else {}
        )
        return job.execute_in_process(
            instance=self.instance,
            asset_selection=[dg.AssetKey(name) for name in assets],
            tags={**range_tags, **(tags or {})},
            run_config=QUIET,
            raise_on_error=True,
        )

    def bootstrap(self, first: pd.Timestamp) -> None:
        """The first `make run`: every day up to now, then the rest of the graph but Feast, so a
        champion exists before monitoring starts."""
        result = self._materialize(BOOTSTRAP_ASSETS, (first, self.now))
        self._record_ingest(result)
        self._record_training(result)

    def tick(self) -> None:
        """What the schedules and the retraining sensor launch at this moment: the routine ingest,
        then monitoring (predictions and the drift report), then a retraining if a check failed."""
        self._record_ingest(self._run_schedule("ingestion_schedule"))
        self._record_drift(self._run_schedule("monitoring_schedule"))
        sensor = self.defs.resolve_sensor_def("retrain_on_drift_sensor")
        # Contexts are entered: each opens its own handle on the instance and must close it.
        cursor = self.sensor_cursor
        with dg.build_sensor_context(instance=self.instance, cursor=cursor, definitions=self.defs) as context:
            data = sensor.evaluate_tick(context)
        self.sensor_cursor = data.cursor
        if data.skip_message and data.skip_message.startswith(COOL_DOWN):
            self.timeline.add(self.now, "skip", reason=data.skip_message)
        for request in data.run_requests or []:
            self.timeline.add(self.now, "retrain", because=request.tags["btc_lifecycle/failed_checks"])
            # As the daemon tags a sensor's runs, so the UI shows who launched it.
            job = self.defs.resolve_job_def(sensor.job_name)
            result = job.execute_in_process(
                instance=self.instance,
                tags={**request.tags, "dagster/sensor_name": sensor.name},
                run_config=QUIET,
                raise_on_error=True,
            )
            self._record_training(result)
            self._record_drift(result, by="retraining")

    def _run_schedule(self, name: str) -> dg.ExecuteInProcessResult:
        """The run ``name`` requests at this moment, executed as the daemon would launch it."""
        schedule = self.defs.resolve_schedule_def(name)
        at = self.now.to_pydatetime()
        with dg.build_schedule_context(instance=self.instance, scheduled_execution_time=at) as context:
            [request] = schedule.evaluate_tick(context).run_requests
        job = self.defs.resolve_job_def(schedule.job_name)
        return job.execute_in_process(
            instance=self.instance,
            tags={**request.tags, "dagster/schedule_name": name},
            run_config=QUIET,
            raise_on_error=True,
        )

    def _record_ingest(self, result: dg.ExecuteInProcessResult) -> None:
        ingest, stats = _metadata(result, "raw_candles"), _metadata(result, "ingestion_stats")
        self.timeline.add(self.now, "ingest", new_rows=ingest["new_rows"], total=stats["dagster/row_count"])

    def _record_training(self, result: dg.ExecuteInProcessResult) -> None:
        model = _metadata(result, "model")
        if model["decision"] == "unchanged_inputs":  # a version was trained on these inputs: no gate ran
            facts = {"version": model["model_version"], "alias": model["alias"], "reason": model["promotion_reason"]}
            self.timeline.add(self.now, "unchanged", **facts)
            return
        self.timeline.add(
            self.now,
            "promotion" if model["promoted"] else "keep",
            version=model["model_version"],
            alias=model["alias"],
            decision=model["decision"],
            p_value=_rounded(model["gate_p_value"], 4),
            improvement=_rounded(model["gate_improvement"], 5),
            heldout_log_loss=round(model["heldout_log_loss"], 4),
            prior_log_loss=round(model["heldout_prior_log_loss"], 4),
            serving_beats_prior=model["serving_model_beats_prior"],
            reason=model["promotion_reason"],
        )
        if model["decision"] == "keep_champion":
            self.timeline.add(
                self.now,
                "rebaseline",
                reference_until=model["data_end"],
                why="the kept champion was re-validated on the challenger's held-out window",
            )

    def _record_drift(self, result: dg.ExecuteInProcessResult, by: str = "schedule") -> None:
        drift, checks = _metadata(result, "drift_report"), _checks(result)
        descriptions = _check_descriptions(result)
        self.timeline.add(
            self.now,
            "drift",
            by=by,
            share=round(drift["drift_share"], 2),
            data_drift="pass" if checks.get("data_drift") else "FAIL",
            performance=_verdict(checks.get("realized_performance")),
            realized_labels=drift["realized_labels"],
            realized_log_loss=_rounded(drift["realized_log_loss"], 4),
            prior_log_loss=_rounded(drift["realized_prior_log_loss"], 4),
            drifted=drift["drifted_columns"],
            performance_why=descriptions.get("realized_performance", ""),
        )


def simulate(
    candle_file: Path,
    warmup_days: float,
    tick_hours: float,
    state: Path,
    until: pd.Timestamp | None = None,
    echo: bool = False,
) -> Timeline:
    """Replay ``candle_file`` from ``warmup_days`` after its first candle to its end (or ``until``)."""
    candles = read_candle_file(candle_file)
    first, last = candles["open_time"].iloc[0], candles["open_time"].iloc[-1] + pd.Timedelta(minutes=1)
    if until is not None:
        last = min(last, until)
    start = first + pd.Timedelta(days=warmup_days)
    if start >= last:
        raise SystemExit(f"{candle_file}: {warmup_days} warm-up days leave nothing to replay")
    with Simulation(candles, candle_file, state, start, echo=echo) as simulation:
        simulation.bootstrap(first)
        moment = start
        while moment < last:
            moment = min(moment + pd.Timedelta(hours=tick_hours), last)
            simulation.advance_to(moment)
            simulation.tick()
        return simulation.timeline


def _utc(value: str) -> pd.Timestamp:
    moment = pd.Timestamp(value)
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candles", type=Path, required=True, help="candle file to replay")
    parser.add_argument("--warmup-days", type=float, default=3.0, help="history the first champion trains on")
    parser.add_argument("--tick-hours", type=float, default=6.0, help="simulated time between ticks")
    parser.add_argument("--until", type=_utc, help="stop the replay at this time (default: the file's end)")
    parser.add_argument(
        "--state", type=Path, help="where the month's instance and stores go (default: data/simulations/<UTC stamp>)"
    )
    args = parser.parse_args(argv)
    state = (args.state or SIMULATIONS_DIR / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")).resolve()
    if state.exists() and any(state.iterdir()):
        parser.error(f"--state {state} is not empty: give a new folder")
    state.mkdir(parents=True, exist_ok=True)
    timeline = simulate(args.candles.resolve(), args.warmup_days, args.tick_hours, state, args.until, echo=True)
    json_path, csv_path = timeline.write(state)
    print(f"\n{summary(timeline)}")
    print(
        f"\nThe month stays in {state}:\n"
        f"  timeline:    {json_path}  ({csv_path.name} beside it)\n"
        f"  Dagster UI:  make dev SIMULATION={state}\n"
        f"  MLflow UI:   make mlflow-ui SIMULATION={state}"
    )
    return 0


def summary(timeline: Timeline) -> str:
    drifts = timeline.of_kind("drift")
    return (
        f"{len(drifts)} drift evaluations ({sum(e['data_drift'] == 'FAIL' for e in drifts)} with data drift, "
        f"{sum(e['performance'] == 'FAIL' for e in drifts)} with realized performance failing), "
        f"{len(timeline.of_kind('retrain'))} retraining(s), {len(timeline.of_kind('promotion'))} promotion(s) "
        f"including the first champion, {len(timeline.of_kind('keep'))} kept champion(s), "
        f"{len(timeline.of_kind('skip'))} retraining(s) skipped in cool-down"
    )


if __name__ == "__main__":
    sys.exit(main())
