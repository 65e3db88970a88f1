"""The console: `serve` (default), `digest --print`, `check`, `store copy`."""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import signal
import sys
import threading
from collections.abc import Sequence

from bot import render
from bot.config import ConfigError, Settings, check_port, load_settings

logger = logging.getLogger("bot")

_SECRET = re.compile(r"(xox[abpr]-|xapp-)[A-Za-z0-9-]+")


class RedactSecrets(logging.Filter):
    """Slack tokens never reach a log line, whatever library logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SECRET.search(message):
            record.msg = _SECRET.sub(r"\1[redacted]", message)
            record.args = ()
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # botocore at DEBUG prints request headers (signatures); keep it quiet unless asked.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="aws-support-bot", description="Run AWS Support from Slack.")
    parser.add_argument("--sandbox", action="store_true", help="use the built-in AWS Support emulator")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the bot (default)")
    serve.add_argument("--port", type=int, default=None, help="HTTP port (default: $PORT or 3000)")
    serve.add_argument("--sandbox", action="store_true", default=argparse.SUPPRESS)
    digest = sub.add_parser("digest", help="render a Trusted Advisor digest")
    digest.add_argument("--print", dest="print_", action="store_true", help="print it to stdout (no Slack)")
    digest.add_argument("--json", action="store_true", help="print the Block Kit JSON instead of text")
    digest.add_argument(
        "--account", default="", metavar="ALIAS|all", help="an account alias (default: the first) or all (the roll-up)"
    )
    digest.add_argument("--sandbox", action="store_true", default=argparse.SUPPRESS)
    check = sub.add_parser("check", help="verify Slack and AWS credentials and the support plan")
    check.add_argument("--sandbox", action="store_true", default=argparse.SUPPRESS)
    store = sub.add_parser("store", help="manage the bot's state")
    store_sub = store.add_subparsers(dest="store_command", required=True)
    copy = store_sub.add_parser("copy", help="copy every table from one store to another (run with the bot stopped)")
    copy.add_argument("--from", dest="source", required=True, help="a sqlite file (BOT_DB_PATH) or postgresql:// URL")
    copy.add_argument("--to", dest="target", required=True, help="a postgresql:// URL or sqlite file")
    copy.add_argument("--force", action="store_true", help="replace what a non-empty target holds")
    args = parser.parse_args(argv)
    args.command = args.command or "serve"
    return args


def _settings(args: argparse.Namespace, *, require_slack: bool) -> Settings:
    sandbox = True if args.sandbox else None
    settings = load_settings(sandbox=sandbox, require_slack=require_slack)
    logging.getLogger().setLevel(settings.log_level)
    return settings


def run_serve(args: argparse.Namespace) -> int:
    # Settings first, before the heavy imports: a bad setup is refused at once.
    settings = _settings(args, require_slack=True)
    port = check_port(args.port if getattr(args, "port", None) is not None else settings.port)

    from slack_sdk.errors import SlackApiError

    from bot.app import build_app
    from bot.bootstrap import (
        SandboxOptions,
        build_services,
        load_accounts,
        prepare_to_serve,
        sandbox_events,
        sandbox_gateway,
        sandbox_settings,
        start_sandbox,
    )
    from bot.store.backend import open_store
    from bot.web import make_health_app, make_wsgi_app, serve

    load_accounts(settings)  # a broken accounts file stops the start here, every mistake named
    # Acks are short and must beat Slack's 3 s while after-ack work runs boto3 on other threads:
    # a shorter GIL switch interval lets a waiting ack run sooner (Python's default is 5 ms). With
    # 8 threads busy parsing AWS answers, acks took 3-4x longer at 5 ms, some over 3 s; quiet
    # bursts (bench.ack) gain only about 3 ms from 5 ms.
    sys.setswitchinterval(0.001)
    # The store first: a second process or a bad BOT_DB_PATH is refused before anything starts.
    store = open_store(settings)
    sandbox = start_sandbox(SandboxOptions.from_settings(settings)) if settings.sandbox else None
    gateway = sandbox_gateway(sandbox.url, region=settings.aws_region) if sandbox else None
    if sandbox:
        settings = sandbox_settings(settings, sandbox)
    services = build_services(
        settings,
        gateway=gateway,
        store=store,
        aws_endpoint_url=sandbox.url if sandbox else None,
        events=sandbox_events(sandbox) if sandbox else None,
    )
    app = build_app(services)
    prepare_to_serve(services)
    services.start_workers()
    try:
        if settings.socket_mode:
            from bot.web import socket_mode_handler

            logger.info("connecting to Slack in Socket Mode")
            handler = socket_mode_handler(app, services)
            try:
                handler.connect()
            except SlackApiError as exc:
                print(render.console_text("socket_mode_refused", error=exc.response.get("error", "")), file=sys.stderr)
                return 1
            # /healthz stays available in Socket Mode for the platform's health checks
            health = threading.Thread(
                target=serve,
                args=(make_health_app(services), port),
                daemon=True,
            )
            health.start()
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
            handler.close()
        else:
            wsgi = make_wsgi_app(app, services)
            # A deploy stops the bot with SIGTERM: end waitress's loop as Ctrl-C does, so the close
            # below writes what was decided and not yet written (the replay claims of the last acks).
            signal.signal(signal.SIGTERM, _interrupt_once)
            with contextlib.suppress(KeyboardInterrupt):  # also one that comes before waitress's own loop
                serve(wsgi, port)
    finally:
        services.close()
        if sandbox:
            sandbox.stop()
    return 0


def _interrupt_once(*_: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the close short
    raise KeyboardInterrupt


def run_digest(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from bot.bootstrap import SandboxOptions, build_services, load_accounts, sandbox_gateway, start_sandbox
    from bot.digest.console import print_digest
    from bot.store.backend import open_store

    settings = _settings(args, require_slack=False)
    load_accounts(settings)
    store = open_store(settings)
    sandbox = start_sandbox(SandboxOptions.from_settings(settings)) if settings.sandbox else None
    try:
        gateway = sandbox_gateway(sandbox.url, region=settings.aws_region) if sandbox else None
        services = build_services(
            settings, gateway=gateway, store=store, aws_endpoint_url=sandbox.url if sandbox else None
        )
        try:
            zone = ZoneInfo(settings.digest_timezone)
            return print_digest(
                services.digests, zone=zone, as_json=args.json, out=sys.stdout, account=args.account, err=sys.stderr
            )
        finally:
            services.close()
    finally:
        if sandbox:
            sandbox.stop()


def run_check(args: argparse.Namespace) -> int:
    from bot.check import run_checks

    settings = _settings(args, require_slack=False)
    return run_checks(settings, out=sys.stdout)


def run_store(args: argparse.Namespace) -> int:
    from bot.store.copy import run_copy

    return run_copy(args.source, args.target, force=args.force, out=sys.stdout, err=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    args = parse_args(argv)
    try:
        if args.command == "digest":
            return run_digest(args)
        if args.command == "check":
            return run_check(args)
        if args.command == "store":
            return run_store(args)
        return run_serve(args)
    except ConfigError as error:
        print(render.console_text("config_error", message=str(error)), file=sys.stderr)
        # `check` promises 0 or 1; the other commands use 2, the usual code for a bad setup.
        return 1 if args.command == "check" else 2


if __name__ == "__main__":
    sys.exit(main())
