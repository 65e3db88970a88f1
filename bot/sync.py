"""The poller: every new communication from AWS Support into the case's linked threads, exactly once.

A cycle (CaseSync.run_cycle) follows every linked case with DescribeCases, 100 case IDs a call,
communications included. The five recent communications it returns tell whether anything is new;
DescribeCommunications is called only for a case whose five are all new while more exist. So a
cycle over N quiet cases costs ceil(N/100) Support API calls.

Exactly once, in order (per case, oldest first):
1. New communications (and a status change) become Deliveries, written to the case's SyncState
   ("pending") before anything is posted: the intent survives a kill -9.
2. Each message goes out with Slack message metadata naming the communication key and the part;
   each confirmed part is written to the store right after Slack answers.
3. A delivery still pending when its case is next synced (a crash, a 5xx, a 429 that outlasted its
   retries) is first reconciled against the thread itself (conversations.replies with metadata):
   whatever Slack already shows is not posted again, whatever it lacks is.
Files go through files.getUploadURLExternal/completeUploadExternal with the file ID written
before the upload, and files.info tells after a crash whether the share happened.

"Sync this case now" is `CaseSync.sync_case(case_id)`: the poller, a button or a future
EventBridge/SQS consumer ("Support Case Update" events) all call the same thing; the poller
is the backstop that guarantees nothing is missed.

Records this module owns in the store:
- sync:    case_id -> SyncState (status, watermark, recently seen keys, pending deliveries)
- watches: channel -> Watch (cards for new cases opened outside Slack)
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot import render
from bot.aws import DESCRIBE_CASES_BATCH
from bot.cases import CaseLink, outbound_key
from bot.domain import HIGH_SEVERITIES, AttachmentRef, Case, Communication, parse_aws_time
from bot.errors import AwsError, BotError, NotAllowed, UserInputError

if TYPE_CHECKING:
    from bot.services import Services

logger = logging.getLogger(__name__)

EVENT_COMMUNICATION = "aws_support_communication"
EVENT_STATUS = "aws_support_status"
EVENT_SOURCE = "aws.support"  # EventBridge
EVENT_DETAIL_TYPE = "Support Case Update"

# AWS may list a communication a little after one that is newer; keys are remembered this far back
# from the newest handled one, and anything older that was never seen counts as history.
LATE_WINDOW = timedelta(minutes=10)
# A reply may carry a time a little before our clock's linked_at (two clocks, rounding).
LINK_SKEW = timedelta(seconds=2)
# A watched case's thread starts just before the case itself.
OPENING = timedelta(seconds=1)
RESOLVED_RECHECK_SECONDS = 30 * 60.0
MISSING_RECHECK_SECONDS = 6 * 3600.0
# Slack's ts and our clock differ; reading a thread back starts this long before the first attempt.
RECONCILE_MARGIN_SECONDS = 300.0
WATCH_GRACE = timedelta(seconds=10)  # a case opened from Slack is recorded within ms of CreateCase
WATCH_RETAIN = timedelta(days=14)

USER_ID = re.compile(r"[UW][A-Z0-9]+")
SECTION_LIMIT = render.MAX_SECTION_TEXT - 100  # room for the template's own markup
SECTIONS_PER_MESSAGE = 12
SLACK_FILE_LIMIT = 1024**3

# Slack errors that mean this thread cannot take the message, now or later: skip it, keep going.
DEAD_THREAD_ERRORS = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "thread_not_found",
        "message_not_found",
        "restricted_action",
        "restricted_action_thread_only",
        "restricted_action_read_only_channel",
        "no_permission",
        "ekm_access_denied",
        "team_access_not_granted",
        "cannot_reply_to_message",
    }
)
# Slack errors that concern the whole bot: the cycle stops, nothing is marked as skipped.
BOT_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "missing_scope"}
)


# Time --------------------------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


def aws_time(moment: datetime) -> str:
    """The ISO 8601 form AWS Support writes (milliseconds, Z)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# Records -----------------------------------------------------------------------------------


@dataclass
class Target:
    """One thread a delivery goes to, and how far it got there."""

    channel: str
    thread_ts: str
    parts: int = 1
    posted: list[int] = field(default_factory=list)  # parts Slack confirmed
    # attachment_id -> {"file_id": str, "done": bool, "skipped": str}
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    dropped: str = ""  # the Slack error that made this thread unreachable
    mention: str = ""  # who a pending-customer-action line calls out

    def texts_done(self) -> bool:
        return bool(self.dropped) or len(set(self.posted)) >= self.parts


@dataclass
class Delivery:
    """A communication or a status change on its way into the threads; written before any post."""

    kind: str  # "communication" | "status"
    key: str
    case_id: str
    display_id: str = ""
    communication: dict[str, Any] | None = None
    status: str = ""
    previous: str = ""
    targets: list[Target] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Delivery:
        raw = dict(raw)
        raw["targets"] = [Target(**t) for t in raw.get("targets", [])]
        return cls(**raw)

    def comm(self) -> Communication:
        raw = dict(self.communication or {})
        raw["attachments"] = tuple(AttachmentRef(a, n) for a, n in raw.get("attachments", []))
        return Communication(**raw)


def _comm_record(comm: Communication) -> dict[str, Any]:
    raw = asdict(comm)
    raw["attachments"] = [[a.attachment_id, a.file_name] for a in comm.attachments]
    return raw


@dataclass
class SyncState:
    """What the poller knows of one followed case. Bounded: `seen` keeps only LATE_WINDOW's keys."""

    case_id: str
    status: str = ""
    watermark: str = ""  # time of the newest communication handled (AWS's ISO form)
    seen: dict[str, str] = field(default_factory=dict)  # key -> time, of recently handled communications
    pending: list[Delivery] = field(default_factory=list)
    full_history: list[str] = field(default_factory=list)  # channels whose thread gets the whole case
    next_check_at: float = 0.0  # resolved and vanished cases are looked at only from then on

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SyncState:
        raw = dict(raw)
        raw["pending"] = [Delivery.from_dict(d) for d in raw.get("pending", [])]
        return cls(**raw)

    @property
    def floor(self) -> datetime | None:
        mark = parse_aws_time(self.watermark)
        return mark - LATE_WINDOW if mark else None

    def is_new(self, comm: Communication) -> bool:
        if comm.key in self.seen:
            return False
        floor, created = self.floor, comm.created_at
        return floor is None or created is None or created > floor

    def mark_seen(self, comm: Communication) -> None:
        created = comm.created_at
        mark = parse_aws_time(self.watermark)
        if created is not None and (mark is None or created > mark):
            self.watermark = aws_time(created)
        self.seen[comm.key] = aws_time(created) if created else self.watermark
        floor = self.floor
        if floor is not None:
            self.seen = {k: t for k, t in self.seen.items() if (parse_aws_time(t) or floor) >= floor}


@dataclass
class Watch:
    """A channel that gets a card for every new case of the account opened outside Slack."""

    channel: str
    level: str  # all | high
    by: str
    since: str  # cases created after this are carded
    # case_id -> {"state": "posting" | "done", "at": epoch, "created": time}
    carded: dict[str, dict[str, Any]] = field(default_factory=dict)

    def wants(self, case: Case) -> bool:
        return self.level == "all" or case.severity_code in HIGH_SEVERITIES


@dataclass
class CycleReport:
    followed: int = 0
    checked: int = 0
    posted: int = 0
    aws_calls: int = 0
    seconds: float = 0.0
    failed_cases: int = 0


class SyncInterrupted(Exception):
    """Slack or AWS failed for now; the case's pending deliveries wait for its next sync."""


# Slack pacing ------------------------------------------------------------------------------


class ChannelPacer:
    """About one message per second per channel (Slack's rule for chat.postMessage), short bursts allowed."""

    def __init__(self, per_second: float = 1.0, burst: float = 3.0) -> None:
        self.per_second = per_second
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait(self, channel: str) -> None:
        with self._lock:
            now = time.monotonic()
            tokens, last = self._buckets.get(channel, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.per_second) - 1
            self._buckets[channel] = (tokens, now)
        if tokens < 0:
            time.sleep(-tokens / self.per_second)


def _slack_error(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error", "")) or "unknown"
    except AttributeError:
        return "unknown"


def _slack_status(exc: SlackApiError) -> int:
    return int(getattr(exc.response, "status_code", 200) or 200)


def _is_dead_thread(exc: SlackApiError) -> bool:
    return _slack_status(exc) < 400 and _slack_error(exc) in DEAD_THREAD_ERRORS


def _is_bot_error(exc: SlackApiError) -> bool:
    return _slack_error(exc) in BOT_ERRORS


# Splitting long bodies ---------------------------------------------------------------------


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Pieces of `text` whose escaped form fits a section; cut at a line or word break when one is near."""
    pieces: list[str] = []
    rest = text.strip("\n")
    while len(render.escape_mrkdwn(rest)) > limit:
        # Count what escaping makes of each character; an "@" may gain a word joiner (@here, @channel).
        size, cut = 0, 0
        for index, char in enumerate(rest):
            size += len(render.escape_mrkdwn(char)) + (char == "@")
            if size > limit:
                break
            cut = index + 1
        soft = max(rest.rfind("\n", cut // 2, cut), rest.rfind(" ", cut // 2, cut))
        if soft > 0:
            cut = soft
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip("\n ") if soft > 0 else rest[cut:]
    pieces.append(rest)
    return pieces


def message_parts(body: str) -> list[list[str]]:
    """The messages a body takes: each a list of section texts within Block Kit's limits."""
    sections = split_text(body)
    return [sections[i : i + SECTIONS_PER_MESSAGE] for i in range(0, len(sections), SECTIONS_PER_MESSAGE)]


# The sync ----------------------------------------------------------------------------------


class CaseSync:
    """AWS -> Slack for followed cases. Thread-safe: one case is synced by one thread at a time."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        self.gateway = services.gateway
        self.slack: WebClient = services.slack
        # Posting must not be retried blindly: a 5xx or a dropped connection may come after Slack
        # stored the message. This client retries only 429 (never stored); the rest is reconciled.
        self.poster = WebClient(
            token=services.slack.token,
            base_url=services.slack.base_url,
            timeout=services.slack.timeout,
            retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=5)],
        )
        self.pacer = ChannelPacer()
        self.watch_grace = WATCH_GRACE
        self.stopping = threading.Event()
        self._states: dict[str, SyncState] | None = None
        self._states_lock = threading.Lock()
        self._case_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._resume_from = ""

    # Public: what any trigger calls ----------------------------------------------------

    def sync_case(self, case_id: str) -> int:
        """Sync this case now (a button, an EventBridge event, the poller). Returns messages posted."""
        cases = self.gateway.describe_cases([case_id])
        if not cases:
            return 0
        links = self.services.cases.links_for(case_id)
        return self._sync(cases[0], links)

    def sync_from_event(self, event: dict[str, Any]) -> int:
        """An EventBridge event (source aws.support, "Support Case Update"): sync its case now.

        Events are best effort, so this only makes things faster; the poller still finds everything.
        """
        if event.get("source") != EVENT_SOURCE or event.get("detail-type") != EVENT_DETAIL_TYPE:
            return 0
        detail = event.get("detail") or {}
        case_id = str(detail.get("case-id") or "")
        if not case_id:
            return 0
        if self.services.cases.links_for(case_id):
            return self.sync_case(case_id)
        if detail.get("event-name") == "CreateCase":
            return self.check_watches()
        return 0

    def wake(self, case_id: str) -> None:
        """Look at a resolved case on the next cycle (a reply from Slack reopens it)."""
        with self._case_locks[case_id]:
            state = self._state(case_id)
            if state and state.next_check_at:
                state.next_check_at = 0.0
                self._save(state)

    def run_cycle(self) -> CycleReport:
        """One pass over every followed case, then the watched channels."""
        started, calls_before = time.monotonic(), self.gateway.calls
        report = CycleReport()
        links = self._links_by_case()
        report.followed = len(links)
        self._forget_unfollowed(links)
        now = time.time()
        due = [cid for cid in sorted(links) if self._due(cid, now)]
        for batch in self._batches(due):
            if self.stopping.is_set():
                break
            try:
                cases = {c.case_id: c for c in self.gateway.describe_cases(batch)}
            except AwsError as error:
                if error.retryable:
                    self._resume_from = batch[0]  # the next cycle starts here, so nobody starves
                raise
            for case_id in batch:
                case = cases.get(case_id)
                if case is None:
                    self._mark_missing(case_id)
                    continue
                report.checked += 1
                try:
                    report.posted += self._sync(case, links[case_id])
                except SyncInterrupted as reason:
                    report.failed_cases += 1
                    logger.warning("sync of %s interrupted, resuming next cycle: %s", case_id, reason)
                except AwsError as error:
                    if error.retryable:  # throttling is account-wide: stop here, resume here next time
                        self._resume_from = case_id
                        raise
                    report.failed_cases += 1
                    logger.warning("sync of %s failed at AWS (%s); trying again next cycle", case_id, error.code)
        self._resume_from = ""
        if not self.stopping.is_set():
            report.posted += self.check_watches()
        report.aws_calls = self.gateway.calls - calls_before
        report.seconds = time.monotonic() - started
        return report

    def stop(self) -> None:
        self.stopping.set()

    # Which cases, in which order --------------------------------------------------------

    def _links_by_case(self) -> dict[str, list[CaseLink]]:
        # One read of the links table per cycle: links_for() would scan it once per case.
        found: dict[str, list[CaseLink]] = defaultdict(list)
        for raw in self.store.table("links").values():
            if raw:
                link = CaseLink(**raw)
                found[link.case_id].append(link)
        return dict(found)

    def _due(self, case_id: str, now: float) -> bool:
        state = self._state(case_id)
        if state is None or state.pending or state.next_check_at <= now:
            return True
        # A resting (resolved) case that Slack reopened (a reply, the Reopen button) is due at once:
        # the case service records the status it showed on the card.
        record = self.store.table("cases").get(case_id) or {}
        return bool(record.get("status")) and record.get("status") != state.status

    def _batches(self, due: list[str]) -> Iterator[list[str]]:
        if self._resume_from:
            start = next((i for i, cid in enumerate(due) if cid >= self._resume_from), 0)
            due = due[start:] + due[:start]
        for start in range(0, len(due), DESCRIBE_CASES_BATCH):
            yield due[start : start + DESCRIBE_CASES_BATCH]

    def _mark_missing(self, case_id: str) -> None:
        # Case data lives 12 months, and a case of another account is never found: look rarely.
        with self._case_locks[case_id]:
            # Without a watermark: if it is ever found, it starts as a case seen for the first time.
            state = self._state(case_id) or SyncState(case_id=case_id)
            state.next_check_at = time.time() + MISSING_RECHECK_SECONDS
            self._save(state)

    def _forget_unfollowed(self, links: dict[str, list[CaseLink]]) -> None:
        # An unlinked case is no longer synced anywhere; keeping its state would only grow the table.
        for case_id in [cid for cid in list(self._all_states()) if cid not in links]:
            with self._case_locks[case_id]:
                # Linked meanwhile (the snapshot is a few ms old)? Then its state is still needed.
                if self._state(case_id) is not None and not self.services.cases.links_for(case_id):
                    self._delete(case_id)

    # One case ----------------------------------------------------------------------------

    def _sync(self, case: Case, links: list[CaseLink]) -> int:
        with self._case_locks[case.case_id]:
            state = self._state(case.case_id)
            fresh = state is None or not state.watermark
            if fresh:
                state = self._first_state(case, links, state)
            posted = 0
            if state.pending:
                # Left by a crash or a failure: what the threads already show is not posted again.
                self._reconcile(state)
                posted += self._deliver_pending(state)
            status_changed = bool(case.status) and case.status != state.status
            final_sweep = status_changed and case.is_resolved
            new = self._new_communications(case, state, fetch_all=final_sweep)
            deliveries = self._plan(case, state, links, new)
            if status_changed:
                # The card first: it is redrawn in place and harmless to redraw twice.
                self.services.cases.update_cards(case)
                deliveries.append(self._status_delivery(case, state, links))
                state.status = case.status
            now = time.time()
            next_check = 0.0
            if case.is_resolved:
                # Looked at rarely from now on; a reopened case (a reply from anywhere) resumes.
                next_check = state.next_check_at if state.next_check_at > now else now + RESOLVED_RECHECK_SECONDS
            changed = fresh or bool(new) or status_changed or next_check != state.next_check_at
            state.next_check_at = next_check
            state.pending.extend(deliveries)
            if changed:
                self._save(state)  # the intent: from here on, a crash neither loses nor doubles
            return posted + self._deliver_pending(state)

    def _first_state(self, case: Case, links: list[CaseLink], known: SyncState | None) -> SyncState:
        """A case seen for the first time: its threads start where each link started, its status is
        what the card shows."""
        record = self.services.cases.record(case.case_id)
        state = known or SyncState(case_id=case.case_id)
        state.status = state.status or (record.status if record else "") or case.status
        opened = parse_aws_time(case.time_created)
        starts = [self._thread_start(link, opened) for link in links]
        state.watermark = aws_time(min(starts) if starts else utcnow())
        return state

    @staticmethod
    def _thread_start(link: CaseLink, opened: datetime | None) -> datetime:
        if link.linked_at:
            return from_epoch(link.linked_at) - LINK_SKEW
        return opened - OPENING if opened else utcnow()

    def _new_communications(self, case: Case, state: SyncState, *, fetch_all: bool) -> list[Communication]:
        """The case's communications not handled yet, oldest first; the five recent ones suffice unless
        all five are new and more exist."""
        recent = list(case.recent_communications)
        found = {c.key: c for c in recent if state.is_new(c)}
        oldest = min(recent, key=lambda c: c.time_created) if recent else None
        gap = case.more_communications and (oldest is None or state.is_new(oldest))
        if gap or fetch_all:
            floor = state.floor
            for comm in self.gateway.communications(case.case_id, after_time=aws_time(floor) if floor else None):
                if state.is_new(comm):
                    found.setdefault(comm.key, comm)
        far_future = datetime.max.replace(tzinfo=UTC)
        return sorted(found.values(), key=lambda c: (c.created_at or far_future, c.time_created))

    def _plan(self, case: Case, state: SyncState, links: list[CaseLink], new: list[Communication]) -> list[Delivery]:
        deliveries: list[Delivery] = []
        outbound = self.store.table("outbound")
        for comm in new:
            from_slack = outbound_key(case.case_id, comm.body) in outbound
            targets = (
                []
                if from_slack
                else [self._target(comm, link) for link in links if self._wants(state, case, comm, link)]
            )
            if not targets:
                state.mark_seen(comm)  # nothing to post: recorded with the intent, in the same write
                continue
            deliveries.append(
                Delivery(
                    kind="communication",
                    key=comm.key,
                    case_id=case.case_id,
                    display_id=case.display_id,
                    communication=_comm_record(comm),
                    targets=targets,
                )
            )
        return deliveries

    @staticmethod
    def _wants(state: SyncState, case: Case, comm: Communication, link: CaseLink) -> bool:
        """Does this thread get this communication? A thread starts with its link, not with the case."""
        if link.channel in state.full_history:
            return True
        created, opened = comm.created_at, parse_aws_time(case.time_created)
        if created is None:
            return True
        if created == opened and comm.submitted_by == case.submitted_by:
            return False  # the opening communication: whoever opened or linked the case has read it
        return not link.linked_at or created > from_epoch(link.linked_at) - LINK_SKEW

    @staticmethod
    def _target(comm: Communication, link: CaseLink) -> Target:
        return Target(channel=link.channel, thread_ts=link.thread_ts, parts=len(message_parts(comm.body)))

    def _status_delivery(self, case: Case, state: SyncState, links: list[CaseLink]) -> Delivery:
        record = self.services.cases.record(case.case_id)
        opener = record.opened_by if record else ""
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

    # Delivering --------------------------------------------------------------------------

    def _deliver_pending(self, state: SyncState) -> int:
        posted = 0
        while state.pending:
            if self.stopping.is_set():
                raise SyncInterrupted("stopping")
            delivery = state.pending[0]
            posted += self._deliver(state, delivery)
            state.pending.pop(0)
            if delivery.kind == "communication":
                state.mark_seen(delivery.comm())
            self._save(state)
        return posted

    def _deliver(self, state: SyncState, delivery: Delivery) -> int:
        posted = 0
        attachments: dict[str, bytes | None] = {}
        for target in delivery.targets:
            if target.dropped:
                continue
            try:
                for part in range(target.parts):
                    if part in target.posted:
                        continue
                    self._post_part(delivery, target, part)
                    target.posted.append(part)
                    self._save(state)
                    posted += 1
                if delivery.kind == "communication":
                    self._post_files(state, delivery, target, attachments)
            except SlackApiError as exc:
                if _is_dead_thread(exc):
                    target.dropped = _slack_error(exc)
                    self._save(state)
                    logger.warning(
                        "case %s: thread %s/%s cannot take messages (%s); skipping it",
                        delivery.case_id,
                        target.channel,
                        target.thread_ts,
                        target.dropped,
                    )
                    continue
                if _is_bot_error(exc):
                    raise
                raise SyncInterrupted(f"Slack {_slack_status(exc)} {_slack_error(exc)}") from exc
            except (OSError, urllib.error.URLError) as exc:
                raise SyncInterrupted(f"Slack unreachable: {exc}") from exc
        return posted

    def _post_part(self, delivery: Delivery, target: Target, part: int) -> None:
        self.pacer.wait(target.channel)
        event_type = EVENT_COMMUNICATION if delivery.kind == "communication" else EVENT_STATUS
        self.poster.chat_postMessage(
            channel=target.channel,
            thread_ts=target.thread_ts,
            metadata={
                "event_type": event_type,
                "event_payload": {"case_id": delivery.case_id, "key": delivery.key, "part": part},
            },
            # AWS text may carry URLs: they show as written and never unfold into previews.
            unfurl_links=False,
            unfurl_media=False,
            **self._message(delivery, target, part),
        )

    def _message(self, delivery: Delivery, target: Target, part: int) -> dict[str, Any]:
        if delivery.kind == "status":
            return {
                "text": render.text(
                    "sync_status_changed",
                    status=delivery.status,
                    previous=delivery.previous,
                    display_id=delivery.display_id,
                    mention=target.mention,
                )
            }
        comm = delivery.comm()
        parts = message_parts(comm.body)
        created = comm.created_at
        context = {
            "comm": comm,
            "display_id": delivery.display_id,
            "sections": parts[part] if part < len(parts) else [],
            "part": part + 1,
            "parts": len(parts),
            "epoch": int(created.timestamp()) if created else 0,
            "attachments": [a.file_name for a in comm.attachments],
        }
        return {
            "blocks": render.blocks("sync_communication.json.j2", **context),
            "text": render.text("sync_communication_fallback", **context),
        }

    def _post_files(self, state: SyncState, delivery: Delivery, target: Target, cache: dict[str, bytes | None]) -> None:
        for ref in delivery.comm().attachments:
            entry = target.files.get(ref.attachment_id) or {}
            if entry.get("done"):
                continue
            if ref.attachment_id not in cache:
                cache[ref.attachment_id] = self._attachment_data(ref)
            data = cache[ref.attachment_id]
            if data is None or len(data) > SLACK_FILE_LIMIT:
                target.files[ref.attachment_id] = {"done": True, "skipped": "unavailable" if data is None else "size"}
                self._save(state)
                continue
            upload = self.slack.files_getUploadURLExternal(filename=ref.file_name or "attachment", length=len(data))
            # The file ID is written before the share, so files.info can tell after a crash.
            target.files[ref.attachment_id] = {"file_id": upload["file_id"], "done": False}
            self._save(state)
            self._upload(upload["upload_url"], data)
            self.poster.files_completeUploadExternal(
                files=[{"id": upload["file_id"], "title": ref.file_name or "attachment"}],
                channel_id=target.channel,
                thread_ts=target.thread_ts,
            )
            target.files[ref.attachment_id]["done"] = True
            self._save(state)

    def _attachment_data(self, ref: AttachmentRef) -> bytes | None:
        try:
            return self.gateway.attachment(ref.attachment_id).data
        except AwsError as error:
            if error.retryable:  # DescribeAttachment is limited per period: the file comes later
                raise SyncInterrupted(f"DescribeAttachment: {error.code}") from error
            logger.warning("attachment %s of %s unavailable: %s", ref.file_name, ref.attachment_id, error.code)
            return None

    def _upload(self, url: str, data: bytes) -> None:
        request = urllib.request.Request(url, data=data, method="POST")
        request.add_header("Content-Type", "application/octet-stream")
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - Slack's own upload URL
            response.read()

    # After a crash ------------------------------------------------------------------------

    def _reconcile(self, state: SyncState) -> None:
        """Compare pending deliveries with their threads: a confirmation lost in a crash is found there."""
        threads: dict[tuple[str, str], set[tuple[str, int]] | None] = {}
        changed = False
        try:
            for delivery in state.pending:
                for target in delivery.targets:
                    if target.dropped:
                        continue
                    if not target.texts_done():
                        where = (target.channel, target.thread_ts)
                        if where not in threads:
                            threads[where] = self._posted_in_thread(
                                target.channel, target.thread_ts, delivery.started_at - RECONCILE_MARGIN_SECONDS
                            )
                        shown = threads[where]
                        if shown is None:
                            target.dropped = "thread_not_found"
                            changed = True
                            continue
                        found = [
                            p for p in range(target.parts) if (delivery.key, p) in shown and p not in target.posted
                        ]
                        if found:
                            target.posted.extend(found)
                            changed = True
                    for entry in target.files.values():
                        if entry.get("file_id") and not entry.get("done"):
                            if self._file_was_shared(entry["file_id"]):
                                entry["done"] = True
                            else:
                                entry.clear()  # upload again; an unshared upload is seen by nobody
                            changed = True
        except SlackApiError as exc:
            if _is_bot_error(exc):
                raise
            raise SyncInterrupted(f"reading a thread back: {_slack_error(exc)}") from exc
        except (OSError, urllib.error.URLError) as exc:
            raise SyncInterrupted(f"Slack unreachable: {exc}") from exc
        if changed:
            self._save(state)

    def _posted_in_thread(self, channel: str, thread_ts: str, oldest: float) -> set[tuple[str, int]] | None:
        """(key, part) of every message of ours in the thread since `oldest`; None if the thread is gone."""
        shown: set[tuple[str, int]] = set()
        cursor = None
        while True:
            try:
                response = self.slack.conversations_replies(
                    channel=channel,
                    ts=thread_ts,
                    include_all_metadata=True,
                    oldest=f"{max(oldest, 0):.6f}",
                    limit=200,
                    cursor=cursor,
                )
            except SlackApiError as exc:
                if _is_dead_thread(exc):
                    return None
                raise
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                if metadata.get("event_type") in (EVENT_COMMUNICATION, EVENT_STATUS):
                    payload = metadata.get("event_payload") or {}
                    shown.add((str(payload.get("key", "")), int(payload.get("part", 0))))
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return shown

    def _file_was_shared(self, file_id: str) -> bool:
        try:
            file = self.slack.files_info(file=file_id)["file"]
        except SlackApiError as exc:
            if _slack_error(exc) == "file_not_found":
                return False
            raise
        return bool(file.get("shares") or file.get("channels") or file.get("groups"))

    # State in the store (write-through cache: one process, one writer per case) ----------

    def _all_states(self) -> dict[str, SyncState]:
        with self._states_lock:
            if self._states is None:
                self._states = {key: SyncState.from_dict(raw) for key, raw in self.store.table("sync").items() if raw}
            return self._states

    def _state(self, case_id: str) -> SyncState | None:
        return self._all_states().get(case_id)

    def _save(self, state: SyncState) -> None:
        self.store.table("sync").put(state.case_id, asdict(state))
        self._all_states()[state.case_id] = state

    def _delete(self, case_id: str) -> None:
        self.store.table("sync").delete(case_id)
        self._all_states().pop(case_id, None)

    def state(self, case_id: str) -> SyncState | None:
        """For health and tests: the stored sync state of a case."""
        return self._state(case_id)

    # Watches: cases opened outside Slack --------------------------------------------------

    def watch(self, channel: str, user: str, level: str = "all") -> Watch:
        if not self.services.settings.is_admin(user):
            raise NotAllowed("watch_admins_only")
        level = (level or "all").lower()
        if level not in ("all", "high"):
            raise UserInputError("watch_usage", word=level)
        table = self.store.table("watches")

        def change(raw: dict[str, Any] | None) -> dict[str, Any]:
            if raw:
                # Changing the level keeps what was already carded and when the watch began.
                return dict(raw, level=level, by=user)
            return asdict(Watch(channel=channel, level=level, by=user, since=aws_time(utcnow())))

        return Watch(**table.update(channel, change))

    def unwatch(self, channel: str, user: str) -> Watch | None:
        if not self.services.settings.is_admin(user):
            raise NotAllowed("watch_admins_only")
        table = self.store.table("watches")
        raw = table.get(channel)
        table.delete(channel)
        return Watch(**raw) if raw else None

    def watches(self) -> list[Watch]:
        return [Watch(**raw) for raw in self.store.table("watches").values() if raw]

    def check_watches(self) -> int:
        """Card every new case of the account in the channels that watch for them. Returns cards posted."""
        watches = self.watches()
        if not watches:
            return 0
        now = utcnow()
        starts = [parse_aws_time(w.since) or now for w in watches]
        after = max(min(starts), now - WATCH_RETAIN)
        cases = sorted(
            self.gateway.list_cases(include_resolved=False, after_time=aws_time(after)), key=lambda c: c.time_created
        )
        posted = 0
        for watch in watches:
            since = parse_aws_time(watch.since) or now
            for case in cases:
                created = parse_aws_time(case.time_created)
                if created is None or created <= since or now - created < self.watch_grace or not watch.wants(case):
                    continue
                entry = watch.carded.get(case.case_id) or {}
                if entry.get("state") == "done":
                    continue
                record = self.services.cases.record(case.case_id)
                if record is not None and record.opened_by:
                    continue  # opened from Slack: its opener's channel has the card already
                try:
                    posted += self._card(watch, case, entry)
                except (BotError, SlackApiError, OSError) as error:
                    logger.warning("could not card case %s in %s: %s", case.case_id, watch.channel, error)
                    break
            self._prune_carded(watch.channel, now)
        return posted

    def _card(self, watch: Watch, case: Case, entry: dict[str, Any]) -> int:
        cases = self.services.cases
        if cases.link_in(case.case_id, watch.channel) is not None:
            self._set_carded(watch.channel, case, "done")
            return 0
        if entry.get("state") == "posting":
            # A crash between the post and the link may have left a card without a link: replace it.
            orphan = self._find_card(watch.channel, case.case_id, float(entry.get("at", 0)) - RECONCILE_MARGIN_SECONDS)
            if orphan:
                self.slack.chat_delete(channel=watch.channel, ts=orphan)
        with self._case_locks[case.case_id]:
            opened = parse_aws_time(case.time_created) or utcnow()
            state = self._state(case.case_id) or SyncState(
                case_id=case.case_id, status=case.status, watermark=aws_time(opened - OPENING)
            )
            if watch.channel not in state.full_history:
                # Written before the card: the thread of a watched case tells the whole story. An
                # existing state keeps its watermark: rewinding it would repost in other threads.
                state.full_history.append(watch.channel)
                self._save(state)
        self._set_carded(watch.channel, case, "posting")
        cases.post_card(case, watch.channel, linked_by=watch.by)
        self._set_carded(watch.channel, case, "done")
        try:
            self.sync_case(case.case_id)  # the opening communication, without waiting a cycle
        except (BotError, SyncInterrupted) as error:
            logger.warning("first sync of watched case %s deferred: %s", case.case_id, error)
        return 1

    def _set_carded(self, channel: str, case: Case, value: str) -> None:
        def change(raw: dict[str, Any] | None) -> dict[str, Any] | None:
            if not raw:
                return raw
            carded = dict(raw.get("carded") or {})
            carded[case.case_id] = {"state": value, "at": time.time(), "created": case.time_created}
            return dict(raw, carded=carded)

        self.store.table("watches").update(channel, change)

    def _prune_carded(self, channel: str, now: datetime) -> None:
        # Cases older than the look-back window are never listed again, so their entries can go.
        horizon = now - WATCH_RETAIN - timedelta(days=1)

        def old(entry: dict[str, Any]) -> bool:
            created = parse_aws_time(entry.get("created"))
            return entry.get("state") == "done" and created is not None and created < horizon

        raw = self.store.table("watches").get(channel)
        if raw and any(old(e) for e in (raw.get("carded") or {}).values()):
            self.store.table("watches").update(
                channel,
                lambda r: dict(r, carded={k: e for k, e in (r.get("carded") or {}).items() if not old(e)}) if r else r,
            )

    def _find_card(self, channel: str, case_id: str, oldest: float) -> str | None:
        """The ts of a card of this case posted in the channel since `oldest` (its buttons carry the case ID)."""
        cursor = None
        while True:
            response = self.slack.conversations_history(
                channel=channel, oldest=f"{max(oldest, 0):.6f}", limit=200, cursor=cursor
            )
            for message in response.get("messages") or []:
                if message.get("bot_id") and _has_case_button(message.get("blocks") or [], case_id):
                    return message["ts"]
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None


def _user_id(value: str) -> str:
    """Only a Slack user ID becomes a mention; anything else (a watch's marker, an e-mail) stays silent."""
    return value if USER_ID.fullmatch(value or "") else ""


def _has_case_button(blocks: Iterable[dict[str, Any]], case_id: str) -> bool:
    return any(
        element.get("value") == case_id
        for block in blocks
        if block.get("type") == "actions"
        for element in block.get("elements") or []
    )


# The background loop -----------------------------------------------------------------------


class Poller:
    """Runs CaseSync.run_cycle every POLL_INTERVAL_SECONDS beside the web server."""

    name = "poller"
    MAX_BACKOFF_SECONDS = 300.0

    def __init__(self, services: Services, interval: float | None = None) -> None:
        self.services = services
        self.interval = interval or services.settings.poll_interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at = utcnow()
        self._last_completed: datetime | None = None
        self._last_report = CycleReport()
        self._last_error = ""
        self._failures = 0
        self._cycles = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._started_at = utcnow()
        self._thread = threading.Thread(target=self._run, name="poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.services.sync.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def health(self) -> dict[str, Any]:
        reference = self._last_completed or self._started_at
        return {
            "interval_seconds": self.interval,
            "last_cycle_at": self._last_completed.isoformat() if self._last_completed else None,
            "lag_seconds": round((utcnow() - reference).total_seconds(), 3),
            "last_cycle_seconds": round(self._last_report.seconds, 3),
            "cases_followed": self._last_report.followed,
            "aws_calls_last_cycle": self._last_report.aws_calls,
            "posted_last_cycle": self._last_report.posted,
            "cycles": self._cycles,
            "last_error": self._last_error,
        }

    def _run(self) -> None:
        sync = self.services.sync
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                report = sync.run_cycle()
            except AwsError as error:
                self._failed(f"AWS {error.code or error.key}")
                logger.warning("poll cycle stopped by AWS (%s); backing off", error.code or error.key)
            except SlackApiError as error:
                self._failed(f"Slack {_slack_error(error)}")
                logger.error("poll cycle stopped by Slack: %s", _slack_error(error))
            except Exception as error:  # noqa: BLE001 - the poller's one boundary: log, keep polling
                self._failed(type(error).__name__)
                logger.exception("poll cycle failed")
            else:
                self._last_report = report
                self._last_completed = utcnow()
                self._cycles += 1
                self._failures = 0
                self._last_error = "" if not report.failed_cases else f"{report.failed_cases} case(s) will retry"
            # A throttled or failing cycle waits longer each time; the next one resumes without loss.
            wait = min(self.interval * 2**self._failures, max(self.interval, self.MAX_BACKOFF_SECONDS))
            self._stop.wait(max(0.0, wait - (time.monotonic() - started)))

    def _failed(self, error: str) -> None:
        self._failures = min(self._failures + 1, 10)
        self._last_error = error
