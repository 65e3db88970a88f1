"""The case lifecycle in domain terms: look cases up, open, link, reply, resolve.

Nothing here reads a Slack payload. CaseService is the face the listeners and the poller use; the
work lives by concern in records.py (what the bot remembers), intake.py (opening a case),
replies.py (replies to AWS), cards.py (the case card), all driven through the work journal.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence

from bot.aws import model as aws_model
from bot.aws.gateway import SupportGateway
from bot.cases.attachments import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS_PER_SET, Attachments
from bot.cases.cards import CARD_EVENT_TYPE, Cards
from bot.cases.intake import Intake
from bot.cases.records import (
    MAX_BODY,
    UNLINKED_FOR_ACCOUNT,
    CaseLink,
    CaseRecord,
    CaseRecords,
    outbound_key,
    plain_text_from_slack,
    split_body,
)
from bot.cases.replies import Replies
from bot.config import Settings
from bot.domain import Case, Communication, NewCase
from bot.errors import BotError, NotAllowed, UserInputError
from bot.slack.files import SlackFile, SlackFiles
from bot.slack.messages import SlackMessages
from bot.slack.people import People
from bot.store.backend import Store, StoreError
from bot.store.journal import Journal, Lease
from bot.work import Done, JournalKeeper, JournalWork

logger = logging.getLogger(__name__)

__all__ = [
    "CARD_EVENT_TYPE",
    "MAX_ATTACHMENT_BYTES",
    "MAX_ATTACHMENTS_PER_SET",
    "MAX_BODY",
    "CaseLink",
    "CaseRecord",
    "CaseService",
    "SlackFile",
    "outbound_key",
    "plain_text_from_slack",
    "split_body",
]

MAX_CC = aws_model.limits().cc_max
RECENT_IN_SHOW = 5


def is_retryable(exc: BaseException) -> bool:
    """Worth waiting out: AWS throttling or a 5xx before anything was done, Slack busy or an
    unclear answer (the next try looks before it acts), the store failing to write (a full disk)."""
    if isinstance(exc, BotError):
        return bool(getattr(exc, "retryable", False))
    return isinstance(exc, (StoreError, sqlite3.OperationalError, OSError))


class CaseService:
    def __init__(
        self,
        *,
        store: Store,
        gateway: SupportGateway,
        messages: SlackMessages,
        people: People,
        files: SlackFiles,
        settings: Settings,
        journal: Journal,
        runner: JournalWork,
        on_sent: Callable[[str], None] = lambda case_id: None,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.attachments = Attachments(files, gateway)
        self.messages = messages
        self.people = people
        self.settings = settings
        self.journal = journal
        self.runner = runner
        self.records = CaseRecords(store)
        self.cards = Cards(records=self.records, gateway=gateway, messages=messages, journal=journal, runner=runner)
        self.intake = Intake(
            records=self.records,
            gateway=gateway,
            messages=messages,
            cards=self.cards,
            journal=journal,
            runner=runner,
            upload=self.attachments.upload,
        )
        self.replies = Replies(
            records=self.records,
            gateway=gateway,
            messages=messages,
            people=people,
            cards=self.cards,
            journal=journal,
            runner=runner,
            upload=self.attachments.upload,
            on_sent=on_sent,
        )
        self.keeper = JournalKeeper(runner, self.prune)

    # Looking cases up ---------------------------------------------------------------------

    def get_case(self, ref: str) -> Case:
        return self.gateway.get_case(ref)

    def record(self, case_id: str) -> CaseRecord | None:
        return self.records.record(case_id)

    def links_for(self, case_id: str) -> list[CaseLink]:
        return self.records.links_for(case_id)

    def link_in(self, case_id: str, channel: str) -> CaseLink | None:
        return self.records.link_in(case_id, channel)

    def case_for_thread(self, channel: str, thread_ts: str) -> str | None:
        return self.records.case_for_thread(channel, thread_ts)

    def links_in_channel(self, channel: str) -> list[CaseLink]:
        return self.records.links_in_channel(channel)

    def open_cases_in_channel(self, channel: str) -> list[Case]:
        case_ids = [link.case_id for link in self.links_in_channel(channel)]
        cases = self.gateway.describe_cases(case_ids, include_communications=False)
        return [case for case in cases if not case.is_resolved]

    def open_cases_of_account(self, user: str) -> list[Case]:
        if not self.settings.is_admin(user):
            raise NotAllowed("not_allowed_list_all")
        return self.gateway.list_cases(include_resolved=False)

    def case_with_history(self, ref: str) -> tuple[Case, list[Communication]]:
        """The case and its last communications, oldest first: one DescribeCases, which brings the
        five most recent with the case."""
        case = self.gateway.get_case(ref, include_communications=True)
        recent = sorted(case.recent_communications, key=lambda c: c.time_created)
        return case, recent[-RECENT_IN_SHOW:]

    # Work noted before the ack, done after it ---------------------------------------------

    def note_new_case(
        self, new_case: NewCase, files: Sequence[SlackFile], *, opened_by: str, channel: str, form_id: str = ""
    ) -> Lease | None:
        return self.intake.note(new_case, files, opened_by=opened_by, channel=channel, form_id=form_id)

    def note_thread_reply(
        self, *, channel: str, thread_ts: str, message_ts: str, user: str, text: str, files: Sequence[SlackFile]
    ) -> Lease | None:
        return self.replies.note_thread_reply(
            channel=channel, thread_ts=thread_ts, message_ts=message_ts, user=user, text=text, files=files
        )

    def note_command_reply(
        self,
        ref: str,
        text: str,
        *,
        user: str,
        channel: str,
        cc: Sequence[str] = (),
        files: Sequence[SlackFile] = (),
        action_id: str = "",
    ) -> Lease | None:
        return self.replies.note_command_reply(
            ref, text, user=user, channel=channel, cc=cc, files=files, action_id=action_id
        )

    def open_case(
        self, new_case: NewCase, files: Sequence[SlackFile], *, opened_by: str, channel: str
    ) -> tuple[Case, CaseLink | None, BotError | None]:
        """Open a case here and now (noted, then run like a submitted form); a card Slack refused
        comes back as an error."""
        lease = self.note_new_case(new_case, files, opened_by=opened_by, channel=channel)
        assert lease is not None  # a fresh key
        outcome = self.runner.run(lease)
        case = self.gateway.get_case(outcome["case_id"], include_communications=False)
        card_error = outcome.get("card_error")
        error = BotError(card_error, **outcome.get("card_error_params", {})) if card_error else None
        return case, self.link_in(case.case_id, channel), error

    def start(self, lease: Lease, on_done: Done | None = None) -> None:
        """Do noted work after the ack, in its thread's order; `on_done` hears how it ended (else a
        failure is told to the person where they asked)."""
        self.runner.submit(lease, on_done)

    def start_noted(self, key: str, on_done: Done | None = None) -> None:
        """Like start(), for work this process noted under `key` before the ack."""
        lease = self.journal.held(key)
        if lease is None:
            raise UserInputError("reply_already_handled")
        self.start(lease, on_done)

    def recover(self) -> int:
        """At start: prune, then resume what a crash interrupted, oldest first per thread."""
        self.prune()
        return self.runner.resume(at_start=True)

    def drop_links_off_accounts(
        self, allowed: Callable[[CaseLink], bool], account_of: Callable[[str], str]
    ) -> list[CaseLink]:
        """Forget the links `allowed` refuses, as the accounts file took their channel off the case's
        account (`account_of(case_id)`, an alias): their threads follow the case no more. Returns them."""
        dropped = [link for link in self.records.all_links() if not allowed(link)]
        for link in dropped:
            self.records.delete_link(link, reason=UNLINKED_FOR_ACCOUNT, account=account_of(link.case_id))
        return dropped

    def explain_unlinked_thread(self, *, channel: str, thread_ts: str, message_ts: str, user: str) -> None:
        """Someone wrote in the thread of a card no longer linked: their message reaches no one, and
        they are told so, once (a redelivered event finds the message claimed)."""
        self.replies.explain_unlinked_thread(channel=channel, thread_ts=thread_ts, message_ts=message_ts, user=user)

    def prune(self) -> int:
        """Keep the store bounded: finished journal records, old markers, unlinked old cases."""
        return self.journal.prune() + self.records.prune()

    def stop(self) -> None:
        """Shutting down: work waiting out a retry gives its record back instead of failing it."""
        self.runner.stop()

    def tell(self, channel: str, user: str, text: str) -> None:
        """An ephemeral note to the person in the channel; a DM when the bot cannot post there."""
        self.messages.tell(channel, user, text)

    # Linking and cards -------------------------------------------------------------------

    def link(self, ref: str, channel: str, user: str) -> tuple[Case, CaseLink, bool]:
        """Posts the card here unless the case is already linked here; returns (case, link, is_new)."""
        case = self.gateway.get_case(ref, include_communications=False)
        existing = self.link_in(case.case_id, channel)
        if existing:
            self.update_cards(case)
            return case, existing, False
        link = self.post_card(case, channel, linked_by=user)
        return case, link, True

    def unlink(self, ref: str, channel: str, user: str) -> Case:
        case = self.gateway.get_case(ref, include_communications=False)
        link = self.link_in(case.case_id, channel)
        if link is None:
            raise UserInputError("not_linked_here", ref=ref)
        self.require_steward(user, case.case_id, "unlink", case.display_id)
        self.records.delete_link(link)
        self.cards.update_card(case, link, unlinked_by=user)
        return case

    def post_card(self, case: Case, channel: str, *, linked_by: str, opened_by: str | None = None) -> CaseLink:
        """Posts the case card in the channel; its thread becomes the case's thread there."""
        return self.cards.post_card(case, channel, linked_by=linked_by, opened_by=opened_by)

    def card_being_posted(self, case_id: str) -> bool:
        """A card of the case is being posted somewhere (any replica), its link not yet recorded."""
        return self.cards.being_posted(case_id)

    def find_card(self, channel: str, case_id: str, *, oldest: float | None = None) -> str | None:
        return self.cards.find_card(channel, case_id, oldest=oldest)

    def update_cards(self, case: Case) -> None:
        """Redraw every card of the case in place (chat.update) and remember its status."""
        self.cards.update_cards(case)

    def refresh(self, ref: str) -> Case:
        case = self.gateway.get_case(ref, include_communications=False)
        self.update_cards(case)
        return case

    def service_names(self, service_code: str, category_code: str) -> tuple[str, str]:
        return self.cards.service_names(service_code, category_code)

    def severity_name(self, code: str) -> str:
        return self.cards.severity_name(code)

    # Resolving ---------------------------------------------------------------------------

    def steward_of(self, case_id: str) -> str:
        record = self.record(case_id)
        return record.steward if record else ""

    def may_steward(self, user: str, case_id: str) -> bool:
        """May `user` resolve, reopen or unlink the case (its steward, or an admin)?"""
        return self.settings.is_admin(user) or (bool(user) and self.steward_of(case_id) == user)

    def require_steward(self, user: str, case_id: str, action: str, ref: str) -> None:
        """Raises NotAllowed naming who may `action` ("resolve", "reopen", "unlink") the case."""
        if not self.may_steward(user, case_id):
            raise NotAllowed("not_steward", action=action, ref=ref, steward=self.steward_of(case_id))

    def resolve(self, ref: str, user: str, channel: str) -> Case:
        case = self.gateway.get_case(ref, include_communications=False)
        self.require_steward(user, case.case_id, "resolve", case.display_id)
        if case.is_resolved:
            self.update_cards(case)
            return case
        self.gateway.resolve_case(case.case_id)
        case = self.gateway.get_case(case.case_id, include_communications=False)
        self.update_cards(case)
        return case

    # People ------------------------------------------------------------------------------

    def display_name(self, user: str) -> str:
        return self.people.display_name(user)

    def display_name_if_known(self, user: str) -> str:
        """A name without asking Slack (for work that must finish before an ack)."""
        return self.people.name_if_known(user)


def case_ids(cases: Iterable[Case]) -> list[str]:
    return [c.case_id for c in cases]
