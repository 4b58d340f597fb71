"""Run a command against live Binance, or against a replay exchange serving a candle file.

``python -m btc_lifecycle.launch [--candles FILE] -- dagster asset materialize ...`` starts the
replay exchange on a free loopback port when ``--candles`` is given, points ccxt at it through
``BINANCE_API_URL``, runs the command, and stops the server whatever happens.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

OFFLINE_HINT = (
    "Binance is unreachable from this machine ({error}).\n"
    "To run offline, replay a candle file through the replay exchange:\n"
    "    make run CANDLES=path/to/candles.csv"
)


@contextmanager
def replay_exchange(candles: Path, extra_args: list[str] | None = None) -> Iterator[str]:
    """A replay exchange subprocess serving ``candles``; yields its base URL."""
    command = [sys.executable, "-m", "btc_lifecycle.replay_exchange", "--candles", str(candles), "--port", "0"]
    server = subprocess.Popen([*command, *(extra_args or [])], stdout=subprocess.PIPE, text=True)
    try:
        banner = server.stdout.readline() if server.stdout else ""
        match = re.search(r"http://127\.0\.0\.1:\d+", banner)
        if not match:
            server.wait(timeout=10)
            raise SystemExit(f"the replay exchange did not start for {candles} (exit code {server.returncode})")
        print(banner.strip(), flush=True)
        yield match.group(0)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def binance_unreachable(api_url: str | None = None) -> str | None:
    """Why Binance (or the host at ``api_url``) cannot be reached, or None when it answers."""
    # Imported here: ccxt (and pandas behind the client) cost about 2 s of start-up, and a replay
    # run never needs them in this process; the replay exchange starts after these imports.
    import ccxt

    from btc_lifecycle.adapters.exchange import make_ccxt_client

    try:
        make_ccxt_client(api_url=api_url, timeout_seconds=5).fetch_time()
    except (ccxt.NetworkError, ccxt.ExchangeError) as error:
        return f"{type(error).__name__}: {str(error)[:160]}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candles", type=Path, help="candle file to replay instead of live Binance")
    parser.add_argument("--replay-start", help="replay clock start (ISO time); default: the end of the file")
    parser.add_argument("--replay-speed", type=float, help="replay seconds per wall second (0 freezes the clock)")
    parser.add_argument("--replay-arg", action="append", default=[], metavar="ARG",
                        help="passed to the replay exchange as is, e.g. --replay-arg=--fault=klines:503:2")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    if args.candles is None:
        if problem := binance_unreachable(os.environ.get("BINANCE_API_URL")):
            print(OFFLINE_HINT.format(error=problem), file=sys.stderr)
            return 2
        return subprocess.call(command)
    if not args.candles.is_file():
        print(f"{args.candles}: candle file not found", file=sys.stderr)
        return 2
    replay_args = [*(["--start", args.replay_start] if args.replay_start else []),
                   *(["--speed", str(args.replay_speed)] if args.replay_speed is not None else []),
                   *args.replay_arg]
    with replay_exchange(args.candles.resolve(), replay_args) as url:
        env = {
            **os.environ,
            "BINANCE_API_URL": url,
            "REPLAY_CANDLES": str(args.candles.resolve()),
            # A replayed file is backfilled whole unless the caller says otherwise.
            "INGEST_BACKFILL_DAYS": os.environ.get("INGEST_BACKFILL_DAYS", "all"),
        }
        return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())
