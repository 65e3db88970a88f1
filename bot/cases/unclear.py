"""A call that makes something at AWS (a case, a communication) may end without saying whether AWS did it:
a dropped connection, a timeout, a 5xx, the bot killed during the call. The journal record then looks for
it by its reference before it calls again; but AWS may still be at work on it, so a look that finds
nothing is trusted only once the call is old enough. The doubt is written with the step that announces
the call, before it is made, so a crash or a store failure after the call cannot lose it."""

from __future__ import annotations

import contextlib
import time

from bot.aws.errors import ERROR_KEYS
from bot.errors import AwsError
from bot.store.errors import StoreError
from bot.work import Job

# Twice botocore's read timeout: AWS has finished whatever it was doing by then.
UNCLEAR_SETTLE_SECONDS = 60.0
# The answers that say AWS did nothing: its refusals (4xx, throttling included, bot/aws/errors.py) and
# a request botocore never sent. Anything else (a 5xx, no answer, an answer without what it must
# hold) leaves it open.
REFUSED_KEYS = frozenset(key for key, _ in ERROR_KEYS.values()) - {"aws_internal_error"} | {
    "aws_error",
    "aws_validation",
    "no_credentials",
    "aws_setup_error",  # the bot's own AWS setup (an SSO session, a profile): refused before sending
    "account_unreachable",  # the account's role could not be assumed: nothing was sent to it
}


def calling() -> dict[str, float | None]:
    """What the save before the call carries: from now on, whether AWS did it is in doubt."""
    return {"unclear_at": time.time(), "unclear": None}


def after_failure(job: Job, error: AwsError) -> None:
    """The call failed: the doubt counts from now if AWS left it open, and ends if AWS refused the call
    (best effort: a doubt left standing costs a minute, never a second copy)."""
    with contextlib.suppress(StoreError, OSError):
        if error.key in REFUSED_KEYS:
            job.save(unclear_at=None)
        else:
            job.save(unclear_at=time.time(), unclear=error.key)


def in_doubt(job: Job) -> bool:
    """Whether the record's last call may have reached AWS without the bot knowing."""
    return job.progress.get("unclear_at") is not None


def not_while_aws_may_be_at_work(job: Job, settle_seconds: float) -> None:
    """Raises (retryable) while the record's last call is recent: what was not found at AWS may still
    land there."""
    if "unclear_at" not in job.progress:
        # A record written before the doubt was kept, cut short during its call: in doubt from now.
        job.save(**calling())
    unclear_at = job.progress.get("unclear_at")
    if unclear_at is not None and time.time() - float(unclear_at) < settle_seconds:
        # The failure as it was, should the deadline pass meanwhile (none known: a crash during the call).
        raise AwsError(str(job.progress.get("unclear") or "aws_unreachable"), code="AnswerLost", retryable=True)
