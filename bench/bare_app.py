"""A bare Bolt app that only acks /aws-support, on the bot's own server setup: bench.ack's baseline.

Bolt as its docs show it (its own signature check, its own WSGI handler), served by the bot's
waitress settings; none of the bot's own request checks (body cap aside) or listeners."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from bot.web import HEALTH_PATH, SLACK_PATH, serve


def build(secret: str) -> App:
    app = App(
        signing_secret=secret,
        client=WebClient(token=os.environ.get("SLACK_BOT_TOKEN", "xoxb-bench"), base_url=os.environ["SLACK_API_URL"]),
        token_verification_enabled=False,
    )

    @app.command("/aws-support")
    def acknowledge(ack: Ack) -> None:
        ack()

    return app


def wsgi_app(app: App) -> Callable[..., Iterable[bytes]]:
    """Bolt's own WSGI handler, as its docs show, plus /healthz for the benchmark to wait on."""
    slack = SlackRequestHandler(app, path=SLACK_PATH)

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
            return [b"{}"]
        return slack(environ, start_response)

    return wsgi


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    serve(wsgi_app(build(args.secret)), args.port, host="127.0.0.1")


if __name__ == "__main__":
    main()
