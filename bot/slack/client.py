"""The one factory of Slack Web API clients: every WebClient (and response_url poster) in the bot comes from here."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.respond import Respond
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient, WebhookResponse

from bot.ack_first import yield_to_requests
from bot.config import Settings

TIMEOUT_SECONDS = 30
RATE_LIMIT_RETRIES = 5


def slack_client(
    settings: Settings,
    *,
    with_token: bool = True,
    timeout: int = TIMEOUT_SECONDS,
    logger: logging.Logger | None = None,
) -> WebClient:
    """A client on SLACK_API_URL, with the bot token unless `with_token=False` (Bolt's template
    client, which gets the token per request), that resends a call only after a 429.

    A 429 means Slack did nothing, so resending after Retry-After is safe. A 5xx or a dropped
    connection may come after Slack stored a message: resending would post it twice, so those
    fail to the caller, which knows whether a retry is safe. slack_sdk's default handlers resend
    on connection errors, hence an explicit list rather than an addition to the defaults.
    """
    return _AfterAckWebClient(
        token=settings.slack_bot_token if with_token else None,
        base_url=settings.slack_api_url,
        timeout=timeout,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
        logger=logger,
    )


class _AfterAckWebClient(WebClient):
    """A WebClient whose calls from an after-ack job first yield to the requests being answered
    (bot.ack_first); on a request thread, a call goes at once."""

    def api_call(self, *args: Any, **kwargs: Any) -> SlackResponse:
        yield_to_requests()
        return super().api_call(*args, **kwargs)


def yielding(client: WebClient) -> WebClient:
    """Bolt's per-request client, made one whose calls yield like slack_client's: Bolt builds a plain
    WebClient for every request from the template's settings, and the failures that listeners' jobs
    tell through it after the ack went out while acks were waiting (and with the job's turn held).
    Its class changes in place: _AfterAckWebClient adds no state, so every setting Bolt gave the
    client stays, and nothing is built again on the ack's path (a copy cost about 9 us a request)."""
    if type(client) is WebClient:
        client.__class__ = _AfterAckWebClient
    return client


def webhook_client(url: str, *, timeout: int = TIMEOUT_SECONDS, **options: Any) -> WebhookClient:
    """A response_url poster that, like slack_client, resends only after a 429: an ephemeral
    answer whose connection dropped after Slack showed it must not show twice."""
    return WebhookClient(
        url=url,
        timeout=timeout,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
        **options,
    )


class RateLimitedRespond(Respond):
    """Bolt's respond() on webhook_client: Bolt builds a WebhookClient with slack_sdk's default
    handlers, which resend once on a reset or dropped connection, and offers no setting for it."""

    def __call__(self, text: str | dict = "", **fields: Any) -> WebhookResponse:  # type: ignore[override]
        if self.response_url is None:
            raise ValueError("respond is unsupported here as there is no response_url")
        message = dict(text) if isinstance(text, dict) else {"text": text, **fields}
        # Bolt leaves out empty lists and unset fields; WebhookClient drops the None ones.
        message = {key: value for key, value in message.items() if value != []}
        yield_to_requests()
        return webhook_client(self.response_url, proxy=self.proxy, ssl=self.ssl).send_dict(message)
