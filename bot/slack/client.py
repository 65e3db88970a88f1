"""The one factory of Slack Web API clients: every WebClient in the bot comes from here."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

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
    return WebClient(
        token=settings.slack_bot_token if with_token else None,
        base_url=settings.slack_api_url,
        timeout=timeout,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
        logger=logger,
    )
