"""``python -m btc_lifecycle.replay_exchange --candles FILE``: serve a candle file as Binance.

``--candles`` repeats, one market each: ``--candles BTC/USDT=a.csv --candles BTC/USD=b.csv``
serves both markets on one replay clock (``SYMBOL=FILE``; a bare ``FILE`` is the ``--symbol``
market, BTC/USDT by default). Every file is read before the server starts; a bad one stops it with
one line naming the file (and the line).

Prints one line once listening: ``replay exchange serving FILE (N candles, FIRST..LAST) at URL``
for one market, ``replay exchange serving SYMBOL=FILE (N candles, FIRST..LAST), SYMBOL=FILE (...)
at URL`` for several; ``--ready-file`` also writes the URL to a file (atomically). Stops on
SIGTERM/SIGINT.

With ``--write-archives DIR`` it serves nothing: it writes every market's kline archives (those
published by ``--start``, default the end of the file that ends last) into DIR in Binance's
layout, prints one line, ``wrote N archives under DIR``, and exits.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from btc_lifecycle.domain.candle_files import read_candle_file
from btc_lifecycle.replay_exchange.archives import parse_archive_fault, write_archive_tree
from btc_lifecycle.replay_exchange.clock import epoch_ms
from btc_lifecycle.replay_exchange.faults import parse_fault
from btc_lifecycle.replay_exchange.markets import DEFAULT_SYMBOL, candle_sources, pair
from btc_lifecycle.replay_exchange.server import ReplayExchange


def _fault(spec: str):
    try:
        return parse_fault(spec)
    except ValueError as error:  # argparse would hide the reason behind "invalid value"
        raise argparse.ArgumentTypeError(str(error)) from None


def _archive_fault(spec: str):
    try:
        return parse_archive_fault(spec)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _start_ms(text: str) -> int:
    try:
        return epoch_ms(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None


def _symbol(text: str) -> str:
    try:
        return pair(text).symbol
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m btc_lifecycle.replay_exchange",
        description="Serve a candle file through Binance's spot REST API on loopback.",
    )
    parser.add_argument(
        "--candles",
        required=True,
        action="append",
        metavar="[SYMBOL=]FILE",
        help="a generic CSV or Binance Vision csv/zip; SYMBOL=FILE serves it as the market SYMBOL "
        "(BASE/QUOTE, e.g. BTC/USD=b.csv), a bare FILE as --symbol; repeatable, one file per market",
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--start", type=_start_ms, help="replay start, ISO 8601 (default: the last candle's close)")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="replay seconds per wall second; 0 freezes (default 1)"
    )
    parser.add_argument(
        "--symbol",
        type=_symbol,
        default=DEFAULT_SYMBOL,
        help=f"the market of a bare --candles FILE, BASE/QUOTE (default {DEFAULT_SYMBOL})",
    )
    parser.add_argument("--interval", default="1m")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        type=_fault,
        metavar="ENDPOINT:KIND[:COUNT[:AFTER]]",
        help="e.g. klines:429:2, klines:429=30, *:503:1:5, klines:delay=2:1, "
        "klines:truncate, klines:empty:1:3, klines:overlap=5, klines:shuffle; "
        "repeatable (all kinds in faults.py)",
    )
    parser.add_argument(
        "--archive-fault",
        action="append",
        default=[],
        type=_archive_fault,
        metavar="KIND@PERIOD",
        help="a fault of one kline archive, e.g. missing@2023-03, checksum@2023-03-05; kinds: "
        "checksum, missing, truncate, micros, revise; repeatable",
    )
    parser.add_argument("--write-archives", type=Path, metavar="DIR", help="write the kline archives into DIR and exit")
    parser.add_argument("--ready-file", type=Path, help="write the URL here once listening")
    parser.add_argument("--log-requests", action="store_true", help="one stderr line per request")
    arguments = parser.parse_args(argv)
    try:
        arguments.markets = candle_sources(arguments.candles, arguments.symbol)
    except ValueError as error:
        parser.error(f"argument --candles: {error.args[0].removeprefix('--candles ')}")
    return arguments


def read_markets(sources: dict[str, Path], interval: str):
    """``{symbol: candle frame}``, every file read and checked; errors name the file."""
    frames = {}
    for symbol, path in sources.items():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: candle file not found (--candles {symbol}={path})")
        frames[symbol] = read_candle_file(path, interval)
    return frames


def write_atomically(path: Path, text: str) -> None:
    # A watcher polling for the file must never read it half written.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.replace(temporary, path)


def serving(sources: dict[str, Path], frames: dict) -> str:
    """What the banner says is served: the file, or each market's ``SYMBOL=FILE``, with its span."""

    def span(frame) -> str:
        first, last = frame["open_time"].iloc[0], frame["open_time"].iloc[-1]
        return f"({len(frame)} candles, {first.isoformat()}..{last.isoformat()})"

    if len(sources) == 1:
        ((symbol, path),) = sources.items()
        return f"{path} {span(frames[symbol])}"
    return ", ".join(f"{symbol}={path} {span(frames[symbol])}" for symbol, path in sources.items())


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        candles = read_markets(arguments.markets, arguments.interval)
        if arguments.write_archives:
            folder = arguments.write_archives
            archives = write_archive_tree(candles, folder, interval=arguments.interval, now_ms=arguments.start)
            print(f"wrote {len(archives)} archives under {folder}", flush=True)
            return 0
        exchange = ReplayExchange(
            candles,
            interval=arguments.interval,
            start=arguments.start,
            speed=arguments.speed,
            faults=arguments.fault,
            archive_faults=arguments.archive_fault,
            host=arguments.host,
            port=arguments.port,
            log_requests=arguments.log_requests,
        )
        stop = threading.Event()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, lambda *_: stop.set())
        url = exchange.start()
    except (ValueError, OSError) as error:  # a bad file, flag or busy port: one line, no trace
        print(f"replay exchange: {error}", file=sys.stderr)
        return 2
    if arguments.ready_file:  # before the line, so a reader of the line can trust the file
        write_atomically(arguments.ready_file, url + "\n")
    print(f"replay exchange serving {serving(arguments.markets, candles)} at {url}", flush=True)
    try:
        stop.wait()
    finally:
        exchange.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
