"""``python -m btc_lifecycle.serving [--host H] [--port N]``: the champion's online scores over HTTP.

Reads the project settings (config file, environment, ``.env``): the MLflow stores and model
name, the Feast repository, the ``serving`` section. Prints one line once listening (and writes
the URL to ``--ready-file``); stops on SIGTERM or SIGINT. docs/operations.md describes the API.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import warnings
from pathlib import Path

from btc_lifecycle.config import ConfigError, Settings, load_settings
from btc_lifecycle.serving.champion import ChampionWatcher, Clock, MlflowChampionLoader, utc_now
from btc_lifecycle.serving.online_features import FeatureSource
from btc_lifecycle.serving.prediction_log import PredictionLog
from btc_lifecycle.serving.server import ServingServer, is_loopback
from btc_lifecycle.serving.service import Market, ScoringService

FEATURES_HINT = "run `make run` (or `make demo`): its feast_online_features asset materializes the newest closed candle"


def build_service(settings: Settings, source: FeatureSource | None = None, clock: Clock = utc_now) -> ScoringService:
    """The service the settings describe: their market, MLflow champion, Feast store and log."""
    from btc_lifecycle.modelling.features import FEATURE_COLUMNS

    if source is None:
        from btc_lifecycle.serving.feast_source import FeastFeatureSource

        source = FeastFeatureSource(settings)
    loader = MlflowChampionLoader(
        tracking_uri=settings.mlflow_tracking_uri,
        registry_uri=settings.mlflow_registry_uri,
        model_name=settings.model.name,
        feature_columns=FEATURE_COLUMNS,
        clock=clock,
    )
    return ScoringService(
        markets=[Market(settings.ingest.symbol, settings.ingest.interval)],
        source=source,
        watcher=ChampionWatcher(loader, clock),
        log=PredictionLog(settings.online_predictions_path),
        feature_columns=FEATURE_COLUMNS,
        clock=clock,
        features_hint=FEATURES_HINT,
    )


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m btc_lifecycle.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="address to bind (default: serving.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: SERVING_PORT, serving.port, 8765); 0 picks a free one")
    parser.add_argument(
        "--reload-seconds",
        type=float,
        help="how often to check the @champion alias (default: serving.reload_interval_seconds); 0: only POST /reload",
    )
    parser.add_argument("--ready-file", type=Path, help="write the URL here once listening")
    parser.add_argument("--log-requests", action="store_true", help="one stderr line per request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        settings = load_settings()
        config = settings.serving
        host = arguments.host or config.host
        port = config.port if arguments.port is None else arguments.port
        interval = config.reload_interval_seconds if arguments.reload_seconds is None else arguments.reload_seconds
        if interval < 0:
            raise ConfigError(f"--reload-seconds must be 0 or more, got {interval}")
        if not config.allow_remote and not is_loopback(host):  # said at once, before anything slow loads
            raise ConfigError(
                f"host {host!r} is not a loopback address: the service has no authentication; "
                "set serving.allow_remote to true in the config to bind it anyway"
            )
        service = build_service(settings)
        server = ServingServer(
            service, host, port, allow_remote=config.allow_remote, log_requests=arguments.log_requests
        )
        service.watcher.start(interval)
        url = server.start()
    except (ConfigError, ValueError, OSError) as error:  # bad config, a busy port, a remote host
        print(f"serving: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop.set())
    if arguments.ready_file:
        from btc_lifecycle.replay_exchange.__main__ import write_atomically

        write_atomically(arguments.ready_file, url + "\n")
    champion = service.watcher.current
    model = f"{settings.model.name} version {champion.version}" if champion else "no champion yet"
    outcome = service.watcher.last_outcome
    print(
        f"serving {model} for {settings.ingest.symbol} {settings.ingest.interval} at {url} "
        f"(GET {url}/predict?symbol={settings.ingest.symbol}, {url}/health); predictions logged to "
        f"{settings.online_predictions_path}",
        flush=True,
    )
    if champion is None and outcome is not None and outcome.error:
        print(f"serving: {outcome.error}", file=sys.stderr, flush=True)
    try:
        stop.wait()
    finally:
        server.stop()
        service.watcher.stop()
        service.log.close()
    return 0


if __name__ == "__main__":
    # The console stays short: no library warnings. Libraries put their own filters first when
    # imported (feast's imports add "once" for DeprecationWarning), so no filter would hold.
    warnings.showwarning = lambda *args, **kwargs: None
    sys.exit(main())
