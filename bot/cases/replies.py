"""A person's reply to a case, from the case's thread, the Reply modal or `/aws-support reply`.

Each reply is a journal record ("reply") written before Slack's ack, keyed by what Slack gives once
per action (the message's channel and ts, the view ID, the trigger_id), ordered by the case thread,
so replies reach AWS in the order people wrote them, from wherever they came.

What reaches AWS carries the record's reference in its attribution ("Ana via Slack · ref 7Q2FK3:").
Before each AddCommunicationToCase the record says which part is being tried; after a crash or a
lost answer that part is looked for at AWS by its reference before it is sent again. Two replies
with the same words are two replies. A thread reply is confirmed (✅) only once AWS has every part.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from bot import render
from bot.accounts.errors import AccountNotAllowed
from bot.aws import model as aws_model
from bot.aws.gateway import SupportGateway
from bot.cases.cards import Cards
from bot.cases.records import CaseLink, CaseRecords, plain_text_from_slack, split_body, thread_order
from bot.cases.unclear import (
    UNCLEAR_SETTLE_SECONDS,
    after_failure,
    calling,
    in_doubt,
    not_while_aws_may_be_at_work,
)
from bot.errors import AwsError, BotError
from bot.slack.files import SlackFile
from bot.slack.messages import SlackMessages, SlackPostFailed
from bot.slack.people import People
from bot.store.journal import Journal, Lease
from bot.work import Job, JournalWork

logger = logging.getLogger(__name__)

KIND = "reply"
MAX_ATTACHMENTS_PER_SET = aws_model.limits().attachments_per_set
MIRROR_EVENT_TYPE = "aws_support_reply"  # metadata of a command reply mirrored into the thread
SKEW_SECONDS = 60  # AWS's clock and ours
CONFIRMATION = "white_check_mark"


def thread_reply_key(channel: str, message_ts: str) -> str:
    """The journal key of a person's message in a case thread: Slack gives a message one ts."""
    return f"reply:{channel}:{message_ts}"


class CardBeingPosted(BotError):
    """The reply's thread may be a card's whose link is not recorded yet: worth waiting out (as
    bot.cases.service.is_retryable reads `retryable`; a keyword argument would be a message param)."""

    key = "card_being_posted"
    retryable = True


class Replies:
    def __init__(
        self,
        *,
        records: CaseRecords,
        gateway: SupportGateway,
        messages: SlackMessages,
        people: People,
        cards: Cards,
        journal: Journal,
        runner: JournalWork,
        upload: Callable[..., str],  # (files, account=… | case_id=…) -> attachment set ID
        on_sent: Callable[[str], None] = lambda case_id: None,
    ) -> None:
        self.records = records
        self.gateway = gateway
        self.messages = messages
        self.people = people
        self.cards = cards
        self.journal = journal
        self.runner = runner
        self.upload = upload
        self.on_sent = on_sent
        self.unclear_settle_seconds = UNCLEAR_SETTLE_SECONDS
        runner.handle(KIND, self)

    # Noting, before the ack --------------------------------------------------------------

    def note_thread_reply(
        self, *, channel: str, thread_ts: str, message_ts: str, user: str, text: str, files: Sequence[SlackFile]
    ) -> Lease | None:
        """None when it is not a case thread, or the message was noted already (a redelivery).

        A thread whose card is being posted right now, its link not yet recorded, may be a case
        thread: the reply is noted all the same and finds its case when it runs (or is let go)."""
        case_id = self._case_of_new_thread(channel, thread_ts, waiting=False)
        if case_id is None:
            return None
        data = {
            "source": "thread",
            "ref": case_id,
            "channel": channel,
            "thread_ts": thread_ts,
            "message_ts": message_ts,
            "user": user,
            "text": text,
            "files": [asdict(f) for f in files],
        }
        return self.journal.record(thread_reply_key(channel, message_ts), KIND, thread_order(channel, thread_ts), data)

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
        """A reply from `/aws-support reply` (`action_id`: its trigger_id) or the Reply modal (its view
        ID); None when that action was noted already (a replayed request, a second submit)."""
        key = f"reply:{action_id or f'{user}:{time.time_ns()}'}"
        data = {
            "source": "command",
            "ref": ref,
            "channel": channel,
            "user": user,
            "text": text,
            "files": [asdict(f) for f in files],
            "cc": list(cc),
        }
        return self.journal.record(key, KIND, self._order_for(ref, channel), data)

    def _order_for(self, ref: str, channel: str) -> str:
        """The queue of the thread the reply shows in, so it keeps its place among the thread's replies."""
        if ref.startswith("case-"):
            case_id: str | None = ref
        else:
            record = self.records.by_display_id(ref)
            case_id = record.case_id if record else None
        link = self.records.linked_thread(case_id, channel) if case_id else None
        return link.order if link else f"case:{case_id or ref}"

    # The work ----------------------------------------------------------------------------

    def run(self, job: Job) -> dict[str, Any]:
        data = job.data
        case_id = job.progress.get("case_id")
        if not case_id:
            if data["source"] == "thread":
                thread_case = data["ref"] or self._case_of_new_thread(data["channel"], data["thread_ts"])
                if thread_case is None:
                    # Noted while a card was posted in the channel: perhaps in the thread of an unlinked one.
                    self.explain_unlinked_thread(
                        channel=data["channel"],
                        thread_ts=data["thread_ts"],
                        message_ts=data["message_ts"],
                        user=data["user"],
                    )
                    return {"not_a_case_thread": True}
                job.save(case_id=thread_case)
            else:
                # Channel rules: a bare display ID is looked for only in accounts this channel may use.
                case = self.gateway.find_case(data["ref"], data["channel"], include_communications=False)
                job.save(case_id=case.case_id, status_before=case.status)
            case_id = job.progress["case_id"]
        bodies = job.progress.get("bodies") or self._bodies(job)
        if not job.progress.get("sent"):
            self._check_channel_before_any_part(job, case_id, bodies[0])
        self._send(job, case_id, bodies)
        # A reply reopens a resolved case: let the poller look at it on its next cycle.
        self.on_sent(case_id)
        if data["source"] == "thread":
            self.messages.react(data["channel"], data["message_ts"], CONFIRMATION)
            return {"case_id": case_id}
        link = self.records.linked_thread(case_id, data["channel"])
        if link is not None:
            self._mirror(job, link)
        after = self.gateway.get_case(case_id, include_communications=False)
        if after.status != job.progress.get("status_before"):
            self.cards.update_cards(after)  # reopened: the card offers Resolve again
        return {
            "case_id": case_id,
            "display_id": after.display_id,
            "status": after.status,
            "linked": self.records.link_in(case_id, data["channel"]) is not None,
        }

    def _case_of_new_thread(self, channel: str, thread_ts: str, *, waiting: bool = True) -> str | None:
        """The case of a thread noted while its card was being posted: known once the link is recorded;
        None when no card of this thread is being posted any more (the message was not a case reply).
        `waiting=False`: "" instead of waiting while a card that may be this thread's is being posted."""
        # Posting asked first, the link second: a card whose post ends between the two looks has
        # recorded its link before its record finished, so one look at each suffices (a message in
        # its thread exists only once the card was posted, hence listed as posting).
        posting = self.cards.may_be_posting(channel, thread_ts)
        case_id = self.records.case_for_thread(channel, thread_ts)
        if case_id is not None or not posting:
            return case_id
        if not waiting:
            return ""
        raise CardBeingPosted()

    def failed(self, job: Job, error: BotError) -> None:
        data = job.data
        unknown = data["source"] == "thread" and not data["ref"] and not job.progress.get("case_id")
        if unknown and self.records.case_for_thread(data["channel"], data["thread_ts"]) is None:
            # Never known to be a case reply (its card was still being posted): nothing to tell in a
            # thread that may not be a case's.
            logger.warning("let go of a message in %s noted while a card was posted: %s", data["channel"], error)
            return
        reason = render.error_text(error)
        if isinstance(error, AccountNotAllowed) and data["source"] == "thread":
            # The channel may no longer use the case's account (the accounts file changed before the reply
            # was resumed): said in the thread, where it lasts, naming nothing of the account.
            reason = render.text("channel_no_longer_follows_account")
        outcome = self._outcome(job, error, reason)
        not_sent = render.text("reply_not_sent", text=data["text"], **outcome)
        if data["source"] != "thread":
            self.messages.tell(data["channel"], data["user"], not_sent)
            return
        try:
            self.messages.post(
                data["channel"],
                thread_ts=data["thread_ts"],
                text=render.text("reply_failed", user=data["user"], **outcome),
            )
        except SlackPostFailed as slack_failure:
            # The thread takes no posts (the bot removed, the channel archived): its writer, at least.
            logger.warning("could not report a failed reply in %s: %s", data["channel"], slack_failure)
            self.messages.tell(data["channel"], data["user"], not_sent)

    def told(self, job: Job, error: BotError) -> BotError:
        """The failure as the person who waits for it (`/aws-support reply`) is told it: with what reached
        AWS when any of it may have, and their text back."""
        outcome = self._outcome(job, error, render.error_text(error))
        if not (outcome["maybe"] or outcome["sent"]):
            return error
        return BotError("reply_not_sent", text=job.data["text"], **outcome)

    @staticmethod
    def _outcome(job: Job, error: BotError, reason: str) -> dict[str, Any]:
        # What reached AWS: never "not sent" for a reply AWS may have, or has a part of (sent again whole,
        # it would be there twice).
        bodies, sent = job.progress.get("bodies") or [], int(job.progress.get("sent") or 0)
        return {"reason": reason, "sent": sent, "parts": len(bodies), "maybe": in_doubt(job), "cause": error.key}

    def explain_unlinked_thread(self, *, channel: str, thread_ts: str, message_ts: str, user: str) -> None:
        """Someone wrote in the thread of a card no longer linked: their message reaches no one, and
        they are told so, once (a redelivered event finds the message claimed)."""
        unlinked = self.records.unlinked_thread(channel, thread_ts)
        if unlinked is None or self.records.case_for_thread(channel, thread_ts) is not None:
            return
        noted = self.journal.get(thread_reply_key(channel, message_ts))
        if noted is not None and (noted.data.get("ref") or noted.progress.get("case_id")):
            return  # written while the thread followed the case (Slack's retry): its own job tells its outcome
        if not self.records.store.table("requests").claim(f"unlinked-reply:{channel}:{message_ts}", int(time.time())):
            return
        note = render.text("reply_in_unlinked_thread", unlinked=unlinked)
        self.messages.tell(channel, user, note, thread_ts=thread_ts)

    # Steps -------------------------------------------------------------------------------

    def _bodies(self, job: Job) -> list[str]:
        data = job.data
        name = self.people.display_name(data["user"])
        # For AWS, not Slack: rendered as plain text, so "A&B" does not arrive as "A&amp;B".
        prefix = render.console_text("reply_attribution", name=name, ref=job.ref) + " "
        text = data["text"]
        if data["source"] == "thread":
            text = plain_text_from_slack(text, self.people.display_name)
        bodies = split_body(prefix, text)
        # More files than parts can carry: the extra files go in extra attributed messages.
        for number in range(len(bodies) + 1, len(_groups(data["files"])) + 1):
            bodies.append(prefix + render.console_text("more_attachments_body", number=number))
        job.save(bodies=bodies, sent=0)
        return bodies

    def _send(self, job: Job, case_id: str, bodies: list[str]) -> None:
        groups = _groups(job.data["files"])
        for index in range(job.progress.get("sent", 0), len(bodies)):
            body = bodies[index]
            if job.progress.get("trying") == index:
                if self._at_aws(job, case_id, body):
                    job.save(sent=index + 1, trying=None, unclear_at=None)
                    continue
                not_while_aws_may_be_at_work(job, self.unclear_settle_seconds)
            # Written before the call: whatever happens next, the poller will not echo this back.
            self.records.mark_outbound(case_id, body, "sending")
            files = groups[index] if index < len(groups) else []
            attachment_set_id = self.upload([SlackFile(**f) for f in files], case_id=case_id) if files else None
            job.save(trying=index, **calling())
            try:
                self.gateway.add_communication(
                    case_id, body, cc_email_addresses=job.data.get("cc") or [], attachment_set_id=attachment_set_id
                )
            except AwsError as error:
                after_failure(job, error)
                raise
            job.save(sent=index + 1, trying=None, unclear_at=None)
            self.records.mark_outbound(case_id, body, "sent")

    def _check_channel_before_any_part(self, job: Job, case_id: str, first_part: str) -> None:
        """Resumed after a restart, a reply may predate an accounts file that took its channel off the
        case's account: while none of it has reached AWS, none of it does (the writer is told why)."""
        try:
            self.cards.check_channel(case_id, job.data["channel"])
        except BotError:
            if job.progress.get("trying") is None:
                raise
            if self._at_aws(job, case_id, first_part):
                job.save(sent=1, trying=None, unclear_at=None)  # part of it is at AWS: it is finished
                return
            not_while_aws_may_be_at_work(job, self.unclear_settle_seconds)
            job.save(unclear_at=None)  # not at AWS a minute after the call: it never will be
            raise

    def _at_aws(self, job: Job, case_id: str, body: str) -> bool:
        """Did an earlier try of this part reach AWS? Asked by the record's reference, which only
        this record's parts carry; the part's own words tell its number."""
        since = datetime.fromtimestamp(job.entry.created_at - SKEW_SECONDS, UTC).isoformat()
        recent = self.gateway.communications(case_id, after_time=since)
        return any(job.ref in c.body and c.body.strip() == body.strip() for c in recent)

    def _mirror(self, job: Job, link: CaseLink) -> None:
        """The reply, shown in the case's thread once (found by its reference after a lost answer)."""
        if job.progress.get("mirror_ts"):
            return
        ts = None
        if job.progress.get("mirroring"):
            ts = self.messages.find(link.channel, MIRROR_EVENT_TYPE, {"ref": job.ref}, thread_ts=link.thread_ts)
        if not ts:
            job.save(mirroring=True)
            user = job.data["user"]
            text = render.text("reply_mirror", name=self.people.display_name(user), user=user, text=job.data["text"])
            try:
                _, ts = self.messages.post(
                    link.channel,
                    thread_ts=link.thread_ts,
                    text=text,
                    metadata={"event_type": MIRROR_EVENT_TYPE, "event_payload": {"ref": job.ref}},
                )
            except SlackPostFailed as error:
                if error.retryable:
                    raise
                logger.warning("could not mirror reply into %s: %s", link.channel, error)
                return
        job.save(mirror_ts=ts)


def _groups(items: list[Any], size: int = MAX_ATTACHMENTS_PER_SET) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
