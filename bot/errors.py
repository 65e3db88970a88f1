"""Domain errors: each names the message a person sees (a macro in templates/messages.txt.j2).

Listeners render `error.key` with `error.params`; nothing below the listeners formats text for people.
"""

from __future__ import annotations

from typing import Any


class BotError(Exception):
    """A failure a person can understand and act on."""

    key = "unexpected_error"

    def __init__(self, key: str | None = None, **params: Any) -> None:
        self.key = key or type(self).key
        self.params = params
        super().__init__(f"{self.key} {params}" if params else self.key)


class StateUnavailable(Exception):
    """The bot's own state cannot be read or written now (the database away, the disk full): not the
    person's doing, and not a bug. bot.store raises it (StoreError); /healthz is red meanwhile."""


class UserInputError(BotError):
    """The person typed something we cannot use (unknown sub-command, bad case reference, …)."""

    key = "bad_input"


class NotAllowed(BotError):
    """The person may not do this here."""

    key = "not_allowed"


class AwsError(BotError):
    """AWS Support refused or failed; `code` is the AWS error code when there is one."""

    key = "aws_error"

    def __init__(self, key: str | None = None, *, code: str = "", retryable: bool = False, **params: Any):
        super().__init__(key, code=code, **params)
        self.code = code
        self.retryable = retryable


class CaseNotFound(AwsError):
    key = "case_not_found"


class AttachmentProblem(AwsError):
    key = "attachment_problem"


class SlackError(BotError):
    """A Slack Web API call failed in a way worth telling the person."""

    key = "slack_error"


def slack_error(exc: Exception) -> str:
    """The error code of a failed Slack Web API call ("unknown" when Slack gave none)."""
    response = getattr(exc, "response", None)
    get = getattr(response, "get", None)
    return (str(get("error", "")) if callable(get) else "") or "unknown"
