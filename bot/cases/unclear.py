"""A call that makes something at AWS (a case, a communication) failed without saying whether AWS did it
(a dropped connection, a timeout, a 5xx): the journal record looks for it by its reference before it
calls again. AWS may still be at work on it then, so a look that finds nothing is trusted only once the
failure is old enough."""

from __future__ import annotations

import time

from bot.errors import AwsError
from bot.work import Job

# Twice botocore's read timeout: AWS has finished whatever it was doing by then.
UNCLEAR_SETTLE_SECONDS = 60.0
# The failures that leave it open: AWS's 5xx, and no answer at all (bot/aws/errors.py). Any other
# answer of AWS, throttling included, says it did nothing.
UNCLEAR_KEYS = frozenset({"aws_internal_error", "aws_unreachable"})


def note_if_unclear(job: Job, error: AwsError) -> None:
    """Before the error goes on to the retries: when it leaves open whether AWS did the work."""
    if error.key in UNCLEAR_KEYS:
        job.save(unclear_at=time.time(), unclear=error.key)


def not_while_aws_may_be_at_work(job: Job, settle_seconds: float) -> None:
    """Raises (retryable) while the record's last unclear failure is recent: what was not found at AWS
    may still land there."""
    unclear_at = job.progress.get("unclear_at")
    if unclear_at is not None and time.time() - float(unclear_at) < settle_seconds:
        # Said as the failure was, should the deadline pass meanwhile.
        raise AwsError(str(job.progress.get("unclear") or "aws_unreachable"), code="AnswerLost", retryable=True)
