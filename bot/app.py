"""Builds the Bolt App and registers the listeners; nothing else."""

from __future__ import annotations

import logging

from slack_bolt import App, BoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.authorize import Authorize

from bot.listeners import register_listeners
from bot.listeners.boundary import unexpected_in_listener
from bot.services import Services
from bot.slack.client import RateLimitedRespond, slack_client
from bot.slack.identity import BotIdentity


class BotTokenAuthorize(Authorize):
    """The one workspace's bot token, and the bot's ids from auth.test when Slack gave them.

    Bolt's own SingleTeamAuthorization calls auth.test on the first request even with
    token_verification_enabled=False, and answers 500 when Slack is unreachable, or "reinstall
    this app" on any Slack error. Here the request runs on without the bot's ids: only Bolt's
    ignore-own-events filter needs them, and our listeners skip bots' messages themselves.
    """

    def __init__(self, token: str, identity: BotIdentity) -> None:
        self.token = token
        self.identity = identity

    def __call__(
        self,
        *,
        context: BoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult:
        bot = self.identity.get()
        return AuthorizeResult(
            enterprise_id=enterprise_id or bot.get("enterprise_id"),
            team_id=team_id or bot.get("team_id"),
            bot_user_id=bot.get("user_id"),
            bot_id=bot.get("bot_id"),
            bot_token=self.token,
            user_id=user_id,
        )


def build_app(services: Services) -> App:
    settings = services.settings
    app = App(
        signing_secret=settings.slack_signing_secret or None,
        # Bolt copies this client (base URL, 429-only retries) for each request, with the token
        # `authorize` gives; Socket Mode opens its connection with it. Without a token of its own,
        # Bolt has none to warn about ignoring.
        client=slack_client(settings, with_token=False),
        authorize=BotTokenAuthorize(settings.slack_bot_token, BotIdentity(settings)),
        listener_executor=services.listener_executor,
        logger=logging.getLogger("bot.bolt"),
        # Socket Mode requests arrive over Slack's own authenticated socket and carry no signature;
        # over HTTP every request is verified (HTTP is not served at all in Socket Mode, see web.py).
        request_verification_enabled=not settings.socket_mode,
    )

    @app.middleware
    def provide_services(context: BoltContext, next) -> None:  # noqa: A002 - Bolt's name
        context["services"] = services
        if context.response_url:
            # Before any listener asks for respond(): Bolt would build its own, which resends posts.
            context["respond"] = RateLimitedRespond(
                response_url=context.response_url, proxy=context.client.proxy, ssl=context.client.ssl
            )
        next()

    # One boundary for what a listener raises on Bolt's thread: an answer to the person, one traceback.
    app.error(unexpected_in_listener)
    register_listeners(app)
    return app
