"""Builds the Bolt App and registers the listeners; nothing else."""

from __future__ import annotations

import logging

from slack_bolt import App, BoltContext

from bot.listeners import register_listeners
from bot.services import Services


def build_app(services: Services) -> App:
    settings = services.settings
    app = App(
        signing_secret=settings.slack_signing_secret or None,
        client=services.slack,
        # auth.test at start would make every start depend on Slack being up; `check` does it instead
        token_verification_enabled=False,
        listener_executor=services.listener_executor,
        logger=logging.getLogger("bot.bolt"),
        # Socket Mode requests arrive over Slack's own authenticated socket and carry no signature;
        # over HTTP every request is verified (HTTP is not served at all in Socket Mode, see web.py).
        request_verification_enabled=not settings.socket_mode,
    )

    @app.middleware
    def provide_services(context: BoltContext, next) -> None:  # noqa: A002 - Bolt's name
        context["services"] = services
        next()

    register_listeners(app)
    return app
