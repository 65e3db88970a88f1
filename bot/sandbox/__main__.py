"""`python -m bot.sandbox --port N`: run the AWS Support sandbox on its own and print its URL."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from bot.sandbox.server import SandboxServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    parser.add_argument(
        "--reply-delay",
        type=float,
        default=30.0,
        help="seconds before the AWS engineer answers; negative: never on his own (default 30)",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds every request waits (default 0)")
    parser.add_argument("--accounts", type=int, default=1, help="how many AWS accounts to emulate (default 1)")
    parser.add_argument("--state", default=None, help="JSON file that keeps cases across restarts")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    server = SandboxServer(
        reply_delay_seconds=args.reply_delay,
        latency_seconds=args.latency,
        state_path=args.state,
        host=args.host,
        port=args.port,
        accounts=args.accounts,
    ).start()
    # The URL alone on the first line of stdout, so a parent process can read it.
    print(server.url, flush=True)
    print(f"AWS Support sandbox: export AWS_ENDPOINT_URL_SUPPORT={server.url}", file=sys.stderr, flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        # Short waits keep the main thread responsive to signals on every platform.
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
