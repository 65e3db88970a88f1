"""What the bot remembers of cases, and the text helpers every case module shares.

Store tables this module owns:
- cases:    case_id -> CaseRecord (what the bot knows of a case, who opened it from Slack, its steward)
- links:    "case_id|channel" -> CaseLink (the card in that channel; its thread is the case's thread)
- threads:  "channel|thread_ts" -> case_id
- outbound: outbound_key(case_id, body) -> {"case_id", "state", "at"}: communications sent from
            Slack, so the poller never echoes them back
- events:   legacy per-feature markers (before the work journal); only pruned now
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from bot.aws import model as aws_model
from bot.domain import Case, NewCase
from bot.store.backend import Store
from bot.text import split_at_breaks

MAX_BODY = aws_model.limits().communication_body_max
KEEP_SECONDS = 7 * 24 * 3600.0
# A card stays in its channel long after it is unlinked: someone may still answer in its thread.
UNLINKED_KEEP_SECONDS = 30 * 24 * 3600.0


def outbound_key(case_id: str, body: str) -> str:
    """Identifies a communication the bot sent from Slack, so the poller never echoes it back."""
    return hashlib.sha256(f"{case_id}\x1f{body.strip()}".encode()).hexdigest()[:32]


def split_body(prefix: str, text: str, limit: int = MAX_BODY) -> list[str]:
    """Split a long reply into bodies within AWS's limit, in order, each attributed; nothing dropped."""
    if len(prefix) + len(text) <= limit:
        return [prefix + text]
    # Room for a "(n/N) " marker; 99 parts of ~7,900 characters is far beyond Slack's 40,000.
    parts = split_at_breaks(text, limit - len(prefix) - len("(99/99) "))
    total = len(parts)
    return [f"{prefix}({i}/{total}) {part}" for i, part in enumerate(parts, start=1)]


def plain_text_from_slack(text: str, name_of: Callable[[str], str] | None = None) -> str:
    """Slack's markup (<@U1>, <#C1|name>, <url|label>, &amp;) turned into the plain text AWS shows."""

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return "@" + (label or (name_of(target[1:]) if name_of else target[1:]))
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            special = target[1:].split("^")[0]
            return label or ("@" + special if special in {"here", "channel", "everyone"} else special)
        if label and label != target:
            return f"{label} ({target.removeprefix('mailto:')})"
        return target.removeprefix("mailto:")

    converted = re.sub(r"<([^<>]+)>", replace, text or "")
    return converted.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@dataclass
class CaseRecord:
    case_id: str
    display_id: str
    subject: str
    status: str
    severity_code: str
    service_code: str
    category_code: str
    submitted_by: str
    time_created: str
    language: str = "en"
    opened_by: str = ""  # Slack user who opened it from Slack, if any
    # Who may resolve, reopen and unlink besides admins: the opener from Slack, else the first
    # person who linked it. Set once; later links (or an unlink and a new link) never change it.
    steward: str = ""
    remembered_at: float = 0.0  # when the bot last wrote it: unlinked records are pruned by age
    # The account's alias and ID; records written before several accounts read as the default one.
    account: str = "default"
    account_id: str = ""

    @classmethod
    def from_case(cls, case: Case, opened_by: str = "", steward: str = "") -> CaseRecord:
        return cls(
            case_id=case.case_id,
            display_id=case.display_id,
            subject=case.subject,
            status=case.status,
            severity_code=case.severity_code,
            service_code=case.service_code,
            category_code=case.category_code,
            submitted_by=case.submitted_by,
            time_created=case.time_created,
            language=case.language,
            opened_by=opened_by,
            steward=steward,
            remembered_at=time.time(),
            account=case.account or "default",
            account_id=case.account_id,
        )

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CaseRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass
class CaseLink:
    case_id: str
    channel: str
    card_ts: str
    linked_by: str = ""
    linked_at: float = 0.0

    @property
    def thread_ts(self) -> str:
        return self.card_ts

    @property
    def order(self) -> str:
        """The work-queue key of the link's thread: replies there, from anywhere, run in order."""
        return thread_order(self.channel, self.card_ts)


@dataclass(frozen=True)
class UnlinkedThread:
    """A card's thread that no longer follows its case: replies written there reach no one."""

    case_id: str
    display_id: str
    reason: str  # UNLINKED_BY_PERSON or UNLINKED_FOR_ACCOUNT
    account: str = ""  # the case's account, when the accounts file took the channel off it
    at: float = 0.0

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> UnlinkedThread:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


UNLINKED_BY_PERSON = "unlink"
UNLINKED_FOR_ACCOUNT = "account"


def thread_order(channel: str, thread_ts: str) -> str:
    return f"{channel}|{thread_ts}"


class CaseRecords:
    """The store's view of followed cases: records, links, threads, communications sent from Slack."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # Cases -------------------------------------------------------------------------------

    def record(self, case_id: str) -> CaseRecord | None:
        raw = self.store.table("cases").get(case_id)
        if raw and "steward" not in raw:
            raw = self._name_steward_of_old_record(case_id, raw)
        return CaseRecord.from_dict(raw) if raw else None

    def _name_steward_of_old_record(self, case_id: str, raw: dict[str, Any]) -> dict[str, Any]:
        # Records from before stewards: the opener, else the earliest linker. Written down at once,
        # so unlinking that first link later does not hand the case to the next linker.
        linkers = sorted((link.linked_at, link.linked_by) for link in self.links_for(case_id) if link.linked_by)
        steward = raw.get("opened_by") or (linkers[0][1] if linkers else "")

        def name(current: dict[str, Any] | None) -> dict[str, Any]:
            current = current or raw
            return current if "steward" in current else {**current, "steward": steward}

        return self.store.table("cases").update(case_id, name)

    def by_display_id(self, display_id: str) -> CaseRecord | None:
        # Picked by the database: `/aws-support reply <display id>` looks here before its ack.
        for _, raw in self.store.table("cases").items_with("display_id", display_id):
            return CaseRecord.from_dict(raw)
        return None

    def remember(self, case: Case, opened_by: str | None = None) -> CaseRecord:
        """Store what AWS says of the case, keeping who opened it and its steward. Only
        remember_opened (CreateCase answered with this case) and the first linker name a steward:
        `opened_by` here is who the caller believes opened it, never enough to hand the case over."""
        self.record(case.case_id)  # names the steward of a record from before stewards

        def refresh(current: dict[str, Any] | None) -> dict[str, Any]:
            current = current or {}
            opener = current.get("opened_by") or opened_by or ""
            steward = current.get("steward", "")
            # What others keep in the record besides its fields (the sync's status_read_at) stays.
            return {**current, **asdict(CaseRecord.from_case(case, opened_by=opener, steward=steward))}

        return CaseRecord.from_dict(self.store.table("cases").update(case.case_id, refresh))

    def remember_opened(self, case_id: str, new_case: NewCase, opened_by: str) -> None:
        """A case CreateCase just opened: who opened it is kept before anything else can fail."""
        record = CaseRecord(
            case_id=case_id,
            display_id="",
            subject=new_case.subject,
            status="opened",
            severity_code=new_case.severity_code,
            service_code=new_case.service_code,
            category_code=new_case.category_code,
            submitted_by="",
            time_created="",
            language=new_case.language,
            opened_by=opened_by,
            steward=opened_by,
            remembered_at=time.time(),
        )
        self.store.table("cases").put(case_id, asdict(record))

    # Links and threads -------------------------------------------------------------------

    def links_for(self, case_id: str) -> list[CaseLink]:
        links = self.store.table("links").items_with("case_id", case_id)  # picked by the database
        return [CaseLink(**raw) for key, raw in links if key.startswith(f"{case_id}|")]

    def all_links(self) -> list[CaseLink]:
        return [CaseLink(**raw) for raw in self.store.table("links").values() if raw]

    def link_in(self, case_id: str, channel: str) -> CaseLink | None:
        raw = self.store.table("links").get(f"{case_id}|{channel}")
        return CaseLink(**raw) if raw else None

    def linked_thread(self, case_id: str, channel: str) -> CaseLink | None:
        """The thread a reply to the case shows in: this channel's, else the first one."""
        return self.link_in(case_id, channel) or next(iter(self.links_for(case_id)), None)

    def case_for_thread(self, channel: str, thread_ts: str) -> str | None:
        return self.store.table("threads").get(f"{channel}|{thread_ts}")

    def followed_case_ids(self) -> list[str]:
        return sorted({raw["case_id"] for raw in self.store.table("links").values()})

    def links_in_channel(self, channel: str) -> list[CaseLink]:
        return [CaseLink(**raw) for _, raw in self.store.table("links").items_with("channel", channel)]

    def save_link(
        self, case_id: str, channel: str, card_ts: str, linked_by: str, *, since: float | None = None
    ) -> CaseLink:
        """`since`: when the thread began (the card's post started); AWS's answers after it belong in it."""
        linked_at = float(since) if since else time.time()
        link = CaseLink(case_id=case_id, channel=channel, card_ts=card_ts, linked_by=linked_by, linked_at=linked_at)
        self.store.table("threads").put(f"{channel}|{card_ts}", case_id)
        self.store.table("links").put(f"{case_id}|{channel}", asdict(link))
        if linked_by:
            self._first_linker_steps_up(case_id, linked_by)
        return link

    def _first_linker_steps_up(self, case_id: str, user: str) -> None:
        # Once the card is in Slack, not before: a link Slack refused makes nobody a steward.
        # One read-modify-write, so two people linking at once cannot both become it.
        def step_up(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None or current.get("steward"):
                return current
            return {**current, "steward": user}

        if self.record(case_id) is not None:  # the card's poster remembered the case before posting
            self.store.table("cases").update(case_id, step_up)

    def delete_link(self, link: CaseLink, *, reason: str = UNLINKED_BY_PERSON, account: str = "") -> None:
        """Forget the link; its thread is remembered as unlinked, so that a reply written there is not
        dropped in silence (written first: a crash leaves the link, not a thread nobody knows of)."""
        record = self.record(link.case_id)
        unlinked = UnlinkedThread(
            case_id=link.case_id,
            display_id=record.display_id if record else "",
            reason=reason,
            account=account,
            at=time.time(),
        )
        self.store.table("unlinked").put(f"{link.channel}|{link.card_ts}", asdict(unlinked))
        self.store.table("links").delete(f"{link.case_id}|{link.channel}")
        self.store.table("threads").delete(f"{link.channel}|{link.card_ts}")

    def unlinked_thread(self, channel: str, thread_ts: str) -> UnlinkedThread | None:
        raw = self.store.table("unlinked").get(f"{channel}|{thread_ts}")
        return UnlinkedThread.from_dict(raw) if isinstance(raw, dict) and raw.get("case_id") else None

    # Sent from Slack ---------------------------------------------------------------------

    def mark_outbound(self, case_id: str, body: str, state: str = "sent") -> None:
        record = {"case_id": case_id, "state": state, "at": time.time()}
        self.store.table("outbound").put(outbound_key(case_id, body), record)

    # Pruning -----------------------------------------------------------------------------

    def prune(self, keep_seconds: float = KEEP_SECONDS) -> int:
        """Forget what no one needs any more: old event markers and outbound keys (the poller is
        long past those communications), and records of cases no longer linked anywhere."""
        cutoff = time.time() - keep_seconds
        pruned = 0
        kept = {"events": cutoff, "outbound": cutoff, "unlinked": time.time() - UNLINKED_KEEP_SECONDS}
        for table, stamp in (("events", "created_at"), ("outbound", "at"), ("unlinked", "at")):
            for key, raw in self.store.table(table).items():
                if not isinstance(raw, dict) or float(raw.get(stamp) or 0) < kept[table]:
                    self.store.table(table).delete(key)
                    pruned += 1
        linked = set(self.followed_case_ids())
        for case_id, raw in self.store.table("cases").items():
            old = not isinstance(raw, dict) or float(raw.get("remembered_at") or 0) < cutoff
            if old and case_id not in linked:
                self.store.table("cases").delete(case_id)
                pruned += 1
        return pruned
