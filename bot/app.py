"""Builds the Bolt App and registers the listeners; nothing else."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltRequest, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.authorize import Authorize
from slack_bolt.middleware import Middleware

from bot.listeners import register_listeners
from bot.listeners.boundary import unexpected_in_listener
from bot.services import Services
from bot.slack.client import RateLimitedRespond, slack_client
from bot.slack.identity import BotIdentity

# Bolt's own limit for a listener's ack (Listener.ack_timeout): after it, Bolt answers without one.
ACK_WAIT_SECONDS = 3.0


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
    listeners = AckWaitingExecutor(services.listener_executor)
    app = App(
        signing_secret=settings.slack_signing_secret or None,
        # Bolt copies this client (base URL, 429-only retries) for each request, with the token
        # `authorize` gives; Socket Mode opens its connection with it. Without a token of its own,
        # Bolt has none to warn about ignoring.
        client=slack_client(settings, with_token=False),
        authorize=BotTokenAuthorize(settings.slack_bot_token, BotIdentity(settings)),
        listener_executor=listeners,
        logger=logging.getLogger("bot.bolt"),
        # Bolt's own check would verify again what web.SlackDoor verified on the same bytes: over HTTP
        # a request reaches Bolt only through that door (web.make_wsgi_app, after its signature
        # check); in Socket Mode requests arrive over Slack's authenticated socket, unsigned, and no
        # HTTP path leads to Bolt (web.make_health_app). One HMAC and one header parse less per ack.
        request_verification_enabled=False,
    )
    app.use(ProvideServices(services, listeners))
    # One boundary for what a listener raises on Bolt's thread: an answer to the person, one traceback.
    app.error(unexpected_in_listener)
    register_listeners(app)
    return app


class ProvideServices(Middleware):
    """Puts the services, and a respond() that never resends, in every request's context.

    A Middleware object rather than a decorated function: Bolt builds a function's arguments from
    some thirty candidates on every request, and this runs on every request before its ack.
    """

    def __init__(self, services: Services, listeners: AckWaitingExecutor) -> None:
        self.services = services
        self.listeners = listeners

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse | None:  # noqa: A002
        context = req.context
        context["services"] = self.services
        context["ack"] = SignalingAck(self.listeners.expect_ack())
        if context.response_url:
            # Before any listener asks for respond(): Bolt would build its own, which resends posts.
            context["respond"] = RateLimitedRespond(
                response_url=context.response_url, proxy=context.client.proxy, ssl=context.client.ssl
            )
        return next()


class SignalingAck(Ack):
    """Bolt's ack(), which also wakes the request thread waiting for it (see AckWaitingExecutor)."""

    def __init__(self, acked: threading.Event) -> None:
        super().__init__()
        self.acked = acked

    def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        try:
            return super().__call__(*args, **kwargs)
        finally:
            self.acked.set()


class AckWaitingExecutor(Executor):
    """Bolt's listener executor: runs each listener on `pool`, and returns to the request thread as
    soon as the listener has acked (or ended), not at Bolt's next look.

    Bolt hands the listener to its executor and then looks for the ack every 10 ms, sleeping in
    between: every ack reached Slack up to 10 ms after it was ready, and held one of the server's
    threads meanwhile. Waiting on an event here, Bolt finds the ack at its first look. The event
    is the request's own (ProvideServices makes it, on the request thread, as Bolt's runner then
    submits there); a submit without one (a lazy listener) does not wait.
    """

    def __init__(self, pool: Executor, max_wait_seconds: float = ACK_WAIT_SECONDS) -> None:
        self.pool = pool
        self.max_wait_seconds = max_wait_seconds
        self._expected = threading.local()

    def expect_ack(self) -> threading.Event:
        """The event the next listener submitted from this thread sets when it acks."""
        acked = threading.Event()
        self._expected.acked = acked
        return acked

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        acked: threading.Event | None = getattr(self._expected, "acked", None)
        self._expected.acked = None
        future = self.pool.submit(fn, *args, **kwargs)
        if acked is not None:
            future.add_done_callback(lambda _: acked.set())  # ended without an ack: Bolt answers as before
            acked.wait(self.max_wait_seconds)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=cancel_futures)
