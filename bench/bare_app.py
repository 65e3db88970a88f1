"""A bare Bolt app that only acks /aws-support, on the bot's own server setup: bench.ack's baseline."""

from __future__ import annotations

import argparse
import os
from types import SimpleNamespace

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.web import serve
from bot.work import AckFirst


class NoServices:
    """Only what the HTTP layer asks of the bot's services: health, and the ack-first gate."""

    work = SimpleNamespace(gate=AckFirst())

    def health(self) -> tuple[bool, dict]:
        return True, {}


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    from bot.web import make_wsgi_app

    serve(make_wsgi_app(build(args.secret), NoServices()), args.port, host="127.0.0.1")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
