"""``python -m btc_lifecycle.production up|down|status|worker``: the production profile on this
machine, and a worker of its pool on another."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from btc_lifecycle.config import ConfigError
from btc_lifecycle.production.layout import ProfileLayout
from btc_lifecycle.production.postgres import ProfileError
from btc_lifecycle.production.services import down, run_worker, status, up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m btc_lifecycle.production", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start PostgreSQL, the MLflow server, the code server, webserver and daemon")
    commands.add_parser("down", help="stop them all, PostgreSQL last")
    show = commands.add_parser("status", help="each part: up or down, port, pid")
    show.add_argument("--json", action="store_true", help="as JSON")
    show.add_argument(
        "--require-up", action="store_true", help="exit 2 with one line unless every part is up and answers (make)"
    )
    worker = commands.add_parser(
        "worker", help="one Celery worker of the profile's pool, in the foreground (on a worker host)"
    )
    worker.add_argument("--name", required=True, help="the worker's name; Celery adds @<hostname>")
    args = parser.parse_args(argv)
    # Started from a background shell, this process may inherit SIGINT ignored, and so would the
    # servers: a caught signal is reset to the default at exec, an ignored one is not.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        layout = ProfileLayout.from_env()
        if args.command == "up":
            began = time.monotonic()
            up(layout)
            print(f"profile up in {time.monotonic() - began:.1f} s", flush=True)
        elif args.command == "worker":
            return run_worker(layout, args.name)
        elif args.command == "down":
            began = time.monotonic()
            down(layout)
            print(f"profile down in {time.monotonic() - began:.1f} s", flush=True)
        else:
            parts = status(layout)
            not_up = [part["name"] for part in parts if not part["answers"]]
            if args.require_up and not_up:
                print(
                    f"error: the production profile is not up ({', '.join(not_up)} down): run `make up`, "
                    f"or `make down` to go back to the embedded profile",
                    file=sys.stderr,
                )
                return 2
            if args.require_up:
                return 0
            if args.json:
                print(json.dumps(parts, indent=1))
            else:
                for part in parts:
                    where = f"{part['host']}:{part['port']}" if part["host"] else ""
                    answers = "" if part["state"] == "down" else (" answers" if part["answers"] else " not answering")
                    pid = f"pid {part['pid']}" if part["pid"] else ""
                    print(f"{part['name'] + ':':<12} {part['state']:<5}{answers:<15} {where:<16} {pid}")
    except (ProfileError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
