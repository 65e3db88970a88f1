"""Who the bot is in Slack (auth.test), asked once when first needed, never at start."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.errors import slack_error
from bot.slack.client import slack_client

logger = logging.getLogger(__name__)

# Asked on a request's path: a Slack that does not answer must leave time for the 3 s ack.
TIMEOUT_SECONDS = 2
RETRY_SECONDS = 30
TOKEN_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})


class BotIdentity:
    """auth.test's answer (team_id, user_id, bot_id…), kept once Slack gave it.

    Until then `get()` returns {} at once: when auth.test fails, one log line says why, and it is
    asked again only after RETRY_SECONDS, so an outage adds no wait and no log flood per request.
    """

    def __init__(
        self, settings: Settings, *, retry_seconds: float = RETRY_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.api_url = settings.slack_api_url
        # slack_sdk logs every failed connection as an error of its own; the line below says it better.
        self.client = slack_client(settings, timeout=TIMEOUT_SECONDS, logger=_QUIET)
        self.retry_seconds = retry_seconds
        self.clock = clock
        self._known: dict[str, Any] = {}
        self._next_try = 0.0
        self._asking = False
        self._lock = threading.Lock()

    def get(self) -> dict[str, Any]:
        with self._lock:
            if self._known or self._asking or self.clock() < self._next_try:
                return self._known
            self._asking = True
        try:
            known = dict(self.client.auth_test().data)  # type: ignore[arg-type]
        except SlackApiError as exc:
            known = {}
            error = slack_error(exc)
            hint = "check SLACK_BOT_TOKEN" if error in TOKEN_ERRORS else "Slack may be having trouble"
            logger.warning(
                "Slack's auth.test failed (%s): %s; requests are served meanwhile, asking again in %ds",
                error,
                hint,
                self.retry_seconds,
            )
        except OSError as exc:
            known = {}
            logger.warning(
                "Slack's auth.test at %s is unreachable (%s): check SLACK_API_URL and the network; requests "
                "are served meanwhile, asking again in %ds",
                self.api_url,
                exc,
                self.retry_seconds,
            )
        with self._lock:
            self._asking = False
            self._known = known
            if not known:
                self._next_try = self.clock() + self.retry_seconds
            return known


_QUIET = logging.getLogger("bot.slack.identity.sdk")
_QUIET.setLevel(logging.CRITICAL)
