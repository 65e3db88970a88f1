"""What a thread gets: which communications each linked thread wants, and the status line's delivery.

Pure decisions over records (no AWS, no Slack, no store), so the cycle stays about fetching and posting.
"""

from __future__ import annotations

import hashlib
import re
import time
from datetime import timedelta

from bot.cases.service import CaseLink
from bot.domain import Case, Communication, parse_aws_time
from bot.sync.poster import message_parts
from bot.sync.state import Delivery, SyncState, Target, from_epoch

# A reply may carry a time a little before our clock's linked_at (two clocks, rounding).
LINK_SKEW = timedelta(seconds=2)
USER_ID = re.compile(r"[UW][A-Z0-9]+")


def wants(state: SyncState, case: Case, comm: Communication, link: CaseLink) -> bool:
    """Does this thread get this communication? A thread starts with its link, not with the case."""
    if link.channel in state.full_history:
        return True
    created, opened = comm.created_at, parse_aws_time(case.time_created)
    if created is None:
        return True
    if created == opened and comm.submitted_by == case.submitted_by:
        return False  # the opening communication: whoever opened or linked the case has read it
    return not link.linked_at or created > from_epoch(link.linked_at) - LINK_SKEW


def target(comm: Communication, link: CaseLink) -> Target:
    return Target(channel=link.channel, thread_ts=link.thread_ts, parts=len(message_parts(comm.body)))


def status_delivery(case: Case, state: SyncState, links: list[CaseLink], *, opener: str) -> Delivery:
    """The status line for every linked thread, mentioning who opened the case (or linked it)."""
    key = hashlib.sha256(f"{case.case_id}\x1f{state.status}\x1f{case.status}\x1f{time.time_ns()}".encode())
    return Delivery(
        kind="status",
        key=key.hexdigest()[:32],
        case_id=case.case_id,
        display_id=case.display_id,
        status=case.status,
        previous=state.status,
        targets=[
            Target(channel=link.channel, thread_ts=link.thread_ts, mention=_user_id(opener or link.linked_by))
            for link in links
        ],
    )


def _user_id(value: str) -> str:
    """Only a Slack user ID becomes a mention; anything else (a watch's marker, an e-mail) stays silent."""
    return value if USER_ID.fullmatch(value or "") else ""
