"""Builds the Bolt App and registers the listeners; nothing else."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_bolt import App, BoltContext, BoltRequest, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.authorize import Authorize
from slack_bolt.middleware import Middleware

from bot.listeners import register_listeners
from bot.listeners.boundary import unexpected_in_listener
from bot.services import Services
from bot.slack.client import RateLimitedRespond, slack_client, yielding
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
        # Listeners run on the request's own thread and Bolt answers when they return. Each one only
        # parses, notes in the store what must survive a crash, acks and hands the rest to a pool
        # (services.work, or services.prompt_work for a modal), so it returns right after its ack.
        # Run on a listener thread, as Bolt does by default, every ack cost a second thread's hand-off
        # and wake-up: in a burst of 20 on 2 cores, twice the threads queued for the interpreter
        # lock, and the ack's p99 grew with them (bench.ack).
        process_before_response=True,
        listener_executor=services.prompt_work,  # Bolt's lazy listeners only: the bot has none
        logger=logging.getLogger("bot.bolt"),
        # Bolt's own check would verify again what web.SlackDoor verified on the same bytes: over HTTP
        # a request reaches Bolt only through that door (web.make_wsgi_app, after its signature
        # check); in Socket Mode requests arrive over Slack's authenticated socket, unsigned, and no
        # HTTP path leads to Bolt (web.make_health_app). One HMAC and one header parse less per ack.
        request_verification_enabled=False,
    )
    app.use(ProvideServices(services))
    # One boundary for what a listener raises before Bolt answers: an answer to the person, one traceback.
    app.error(unexpected_in_listener)
    register_listeners(app)
    return app


class ProvideServices(Middleware):
    """Puts the services, and a respond() that never resends, in every request's context.

    A Middleware object rather than a decorated function: Bolt builds a function's arguments from
    some thirty candidates on every request, and this runs on every request before its ack.
    """

    def __init__(self, services: Services) -> None:
        self.services = services

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse | None:  # noqa: A002
        context = req.context
        context["services"] = self.services
        context["client"] = yielding(context.client)
        if context.response_url:
            # Before any listener asks for respond(): Bolt would build its own, which resends posts.
            context["respond"] = RateLimitedRespond(
                response_url=context.response_url, proxy=context.client.proxy, ssl=context.client.ssl
            )
        return next()
