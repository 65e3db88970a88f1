"""The case card: posted once per channel (its thread is the case's thread there), redrawn in place.

Posting a card is a journal record ("card"): noted before chat.postMessage, so a crash or a lost
answer is followed by a look for the card (by its metadata) before any second post.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from bot import render
from bot.aws.gateway import SupportGateway
from bot.cases.records import CaseLink, CaseRecord, CaseRecords
from bot.domain import Case
from bot.errors import BotError
from bot.slack.messages import SlackMessages
from bot.store.journal import Journal
from bot.work import Job, JournalWork

logger = logging.getLogger(__name__)

CARD_EVENT_TYPE = "aws_support_case"  # message metadata that marks a case card
KIND = "card"
CLOCK_SKEW_SECONDS = 60  # Slack's clock (message ts) and ours


class Cards:
    def __init__(
        self,
        *,
        records: CaseRecords,
        gateway: SupportGateway,
        messages: SlackMessages,
        journal: Journal,
        runner: JournalWork,
    ) -> None:
        self.records = records
        self.gateway = gateway
        self.messages = messages
        self.journal = journal
        self.runner = runner
        # (case_id, channel): raises a BotError when the channel may not see the case (its account's
        # channels, with several accounts). A card resumed after a restart may predate the accounts file.
        self.check_channel: Callable[[str, str], None] = lambda case_id, channel: None
        runner.handle(KIND, self)

    # Posting -----------------------------------------------------------------------------

    def post_card(self, case: Case, channel: str, *, linked_by: str, opened_by: str | None = None) -> CaseLink:
        """Posts the case card in the channel (unless it is there); its thread becomes the case's thread."""
        self.records.remember(case, opened_by)
        existing = self.records.link_in(case.case_id, channel)
        if existing is not None:
            return existing
        key = f"card:{case.case_id}|{channel}|{time.time_ns()}"
        data = {"case_id": case.case_id, "channel": channel, "linked_by": linked_by}
        lease = self.journal.record(key, KIND, f"case:{case.case_id}", data)
        assert lease is not None  # a fresh key
        self.runner.run(lease)
        link = self.records.link_in(case.case_id, channel)
        assert link is not None
        return link

    def run(self, job: Job) -> dict[str, Any]:
        data = job.data
        self.check_channel(data["case_id"], data["channel"])
        link = self.post_step(job, data["case_id"], data["channel"], linked_by=data.get("linked_by", ""))
        return {"card_ts": link.card_ts}

    def failed(self, job: Job, error: BotError) -> None:
        logger.warning("could not post the card of %s in %s: %s", job.data["case_id"], job.data["channel"], error)

    def may_be_posting(self, channel: str, thread_ts: str) -> bool:
        """Could `thread_ts` be the thread of a card being posted in the channel now (by any replica),
        whose link is not recorded yet? Not when that card's ts is known and another, nor when the
        thread began before the card's post did."""
        for entry in self.journal.pending_under(_posting_in(channel)):
            card_ts = entry.progress.get("card_ts")
            if card_ts:
                if card_ts == thread_ts:
                    return True
                continue
            started = entry.progress.get("card_posting_at")
            try:
                if started is None or float(thread_ts) >= float(started) - CLOCK_SKEW_SECONDS:
                    return True
            except ValueError:
                return True
        return False

    def being_posted(self, case_id: str) -> bool:
        """True while a card of the case is being posted (by any replica), its link not yet recorded."""
        return bool(self.journal.pending_under(_posting_case(case_id)))

    def find_card(self, channel: str, case_id: str, *, oldest: float | None = None) -> str | None:
        """The ts of this case's card in the channel, by its metadata: among the last messages, or all
        since `oldest` (epoch seconds). Raises SlackUnclear when Slack cannot be read."""
        return self.messages.find(channel, CARD_EVENT_TYPE, {"case_id": case_id}, oldest=oldest)

    def post_step(self, job: Job, case_id: str, channel: str, *, linked_by: str, case: Case | None = None) -> CaseLink:
        """The card as one step of a journal record: found again after a crash or a lost answer,
        posted only when Slack does not have it."""
        link = self.records.link_in(case_id, channel)
        if link is not None:
            return link
        card_ts = job.progress.get("card_ts")
        if not card_ts and job.progress.get("card_posting"):
            # Since its post began, however busy the channel was meanwhile (a record of the previous
            # release knows no start: the channel's last messages).
            started = job.progress.get("card_posting_at")
            card_ts = self.find_card(channel, case_id, oldest=float(started) - CLOCK_SKEW_SECONDS if started else None)
        if not card_ts:
            # The thread begins here, before the case is read for the card: AWS's answers from now on
            # belong in it, however long Slack takes to answer the post.
            job.save(card_posting=True, card_posting_at=job.progress.get("card_posting_at") or time.time())
            # Before Slack has the card, whatever arrives for it before its link is recorded waits for
            # it: a reply in its thread (Replies), an AWS event for its case (CaseSync.being_linked).
            self.journal.note_under(_posting_in(channel), job.lease.key)
            self.journal.note_under(_posting_case(case_id), job.lease.key)
            case = case or self.gateway.get_case(case_id, include_communications=False)
            record = self.records.remember(case)
            channel, card_ts = self.messages.post(
                channel,
                metadata={"event_type": CARD_EVENT_TYPE, "event_payload": {"case_id": case_id}},
                **self.card_message(case, record),
            )
            job.save(card_ts=card_ts)
        link = self.records.save_link(case_id, channel, card_ts, linked_by, since=job.progress.get("card_posting_at"))
        # Linked: off the lists at once, so that the checks before an ack read only cards still posting
        # (a crash before this leaves it to them to strike once the record is finished).
        self.journal.strike_from(_posting_in(channel), job.lease.key)
        self.journal.strike_from(_posting_case(case_id), job.lease.key)
        return link

    # Redrawing ---------------------------------------------------------------------------

    def update_cards(self, case: Case) -> None:
        """Redraw every card of the case in place (chat.update) and remember its status."""
        self.records.remember(case)
        for link in self.records.links_for(case.case_id):
            self.update_card(case, link)

    def update_card(self, case: Case, link: CaseLink, **extra: Any) -> None:
        record = self.records.record(case.case_id) or CaseRecord.from_case(case)
        # A deleted card or a channel the bot left: the case itself is fine, so keep going.
        self.messages.update(link.channel, link.card_ts, **self.card_message(case, record, **extra))

    def card_message(self, case: Case, record: CaseRecord, **extra: Any) -> dict[str, Any]:
        service_name, category_name = self.service_names(case.service_code, case.category_code)
        context = {
            "case": case,
            "record": record,
            "service_name": service_name,
            "category_name": category_name,
            "severity_name": self.severity_name(case.severity_code),
            **extra,
        }
        return {
            "blocks": render.blocks("case_card.json.j2", **context),
            "text": render.text("case_card_fallback", case=case),
        }

    def service_names(self, service_code: str, category_code: str) -> tuple[str, str]:
        try:
            services = self.gateway.services()
        except BotError:
            return service_code, category_code
        for service in services:
            if service.code == service_code:
                for category in service.categories:
                    if category.code == category_code:
                        return service.name, category.name
                return service.name, category_code
        return service_code, category_code

    def severity_name(self, code: str) -> str:
        try:
            levels = self.gateway.severity_levels()
        except BotError:
            return code
        return next((level.name for level in levels if level.code == code), code)


def _posting_in(channel: str) -> str:
    return f"cards-posting:{channel}"


def _posting_case(case_id: str) -> str:
    return f"cards-posting-case:{case_id}"
