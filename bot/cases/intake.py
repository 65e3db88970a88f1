"""Opening a case from the Create case form, exactly once.

The form is a journal record ("open_case", keyed by Slack's view ID) written before the ack closes
the modal. CreateCase has no idempotency token, so the record's reference goes into the case's
opening body: after a crash or a lost answer, "is ref 7Q2FK3 among the cases opened since?" tells
whether AWS opened it, and another form with the same subject never counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from bot import render
from bot.aws.gateway import SupportGateway
from bot.cases.cards import Cards
from bot.cases.records import CaseRecords
from bot.cases.unclear import UNCLEAR_SETTLE_SECONDS, after_failure, calling, in_doubt, not_while_aws_may_be_at_work
from bot.domain import NewCase
from bot.errors import AttachmentProblem, AwsError, BotError
from bot.slack.files import SlackFile
from bot.slack.messages import SlackMessages
from bot.store.journal import Journal, Lease
from bot.work import Job, JournalWork

KIND = "open_case"
SKEW_SECONDS = 60  # AWS's clock and ours
GONE_SET_CODES = frozenset({"AttachmentSetExpired", "AttachmentSetIdNotFound"})


class Intake:
    def __init__(
        self,
        *,
        records: CaseRecords,
        gateway: SupportGateway,
        messages: SlackMessages,
        cards: Cards,
        journal: Journal,
        runner: JournalWork,
        upload: Callable[..., str],  # (files, account=… | case_id=…) -> attachment set ID
    ) -> None:
        self.records = records
        self.gateway = gateway
        self.messages = messages
        self.cards = cards
        self.journal = journal
        self.runner = runner
        self.upload = upload
        self.unclear_settle_seconds = UNCLEAR_SETTLE_SECONDS
        runner.handle(KIND, self)

    def note(
        self, new_case: NewCase, files: Sequence[SlackFile], *, opened_by: str, channel: str, form_id: str = ""
    ) -> Lease | None:
        """Note a submitted form before its ack closes the modal; None when this form (Slack's view
        ID) was noted already: a second submit of the same modal must not open a second case."""
        key = f"create:{form_id or f'{opened_by}:{time.time_ns()}'}"
        data = {
            "new_case": asdict(new_case),
            "files": [asdict(f) for f in files],
            "opened_by": opened_by,
            "channel": channel,
        }
        return self.journal.record(key, KIND, key, data)

    # The work ----------------------------------------------------------------------------

    def run(self, job: Job) -> dict[str, Any]:
        new_case = _new_case(job.data["new_case"])
        user, channel = job.data["opened_by"], job.data["channel"]
        case_id = job.progress.get("case_id") or self._create(job, new_case)
        case = self.gateway.get_case(case_id, include_communications=False)
        try:
            self.cards.post_step(job, case_id, channel, linked_by=user, case=case)
            self.records.remember(case, opened_by=user)
        except BotError as error:
            if getattr(error, "retryable", False):
                raise
            # The case is open at AWS whatever Slack says: the person is told how to link it.
            reason = render.error_text(error)
            self.messages.tell(channel, user, render.text("case_opened_card_failed", case=case, reason=reason))
            return {"case_id": case_id, "card_error": error.key, "card_error_params": error.params}
        return {"case_id": case_id}

    def failed(self, job: Job, error: BotError) -> None:
        new_case = _new_case(job.data["new_case"])
        user, channel = job.data["opened_by"], job.data["channel"]
        reason = render.error_text(error)
        opened = job.progress.get("case_id")
        if opened:
            # CreateCase went through; only what followed failed. Saying "not opened" would make
            # the person open it again.
            self.messages.tell(channel, user, render.text("case_opened_without_card", case_id=opened, reason=reason))
            return
        # AWS may have opened it: "not opened" would make the person open it again.
        maybe = bool(job.progress.get("creating")) and in_doubt(job)
        self.messages.tell(
            channel,
            user,
            render.text(
                "case_open_failed",
                reason=reason,
                subject=new_case.subject,
                description=new_case.body,
                maybe=maybe,
                cause=error.key,
            ),
        )

    def _create(self, job: Job, new_case: NewCase) -> str:
        body = opening_body(new_case.body, job.ref)
        case_id = self._opened_before(job, new_case, body) if job.progress.get("creating") else None
        if case_id is None and job.progress.get("creating"):
            not_while_aws_may_be_at_work(job, self.unclear_settle_seconds)
        if case_id is None:
            files = [SlackFile(**f) for f in job.data["files"]]
            saved = job.progress.get("attachment_set_id")
            attachment_set_id = saved or (self.upload(files, account=new_case.account) if files else None)
            if attachment_set_id and not saved:
                job.save(attachment_set_id=attachment_set_id)
            job.save(creating=True, **calling())
            try:
                case_id = self._create_with(job, new_case, body, attachment_set_id)
            except AttachmentProblem as problem:
                if not saved or problem.code not in GONE_SET_CODES:
                    raise
                # A set lives an hour at AWS; after a longer outage the files are uploaded again
                # (Slack still has them). AWS refused the call, so nothing was opened.
                attachment_set_id = self.upload(files, account=new_case.account)
                job.save(attachment_set_id=attachment_set_id, **calling())
                case_id = self._create_with(job, new_case, body, attachment_set_id)
        # The opening description is ours: the poller must never echo it into the thread. Both are
        # written before the case ID is saved, so a crash in between finds the case again by its
        # reference and writes them again, rather than resuming with a case nobody is steward of.
        self.records.mark_outbound(case_id, body)
        self.records.remember_opened(case_id, new_case, job.data["opened_by"])
        job.save(case_id=case_id, unclear_at=None)
        return case_id

    def _create_with(self, job: Job, new_case: NewCase, body: str, attachment_set_id: str | None) -> str:
        try:
            return self.gateway.create_case(
                NewCase(**{**asdict(new_case), "body": body, "attachment_set_id": attachment_set_id})
            )
        except AwsError as error:
            after_failure(job, error)
            raise

    def _opened_before(self, job: Job, new_case: NewCase, body: str) -> str | None:
        """A crash or a lost answer while CreateCase was under way: is this record's case at AWS?"""
        since = datetime.fromtimestamp(job.entry.created_at - SKEW_SECONDS, UTC).isoformat()
        marker = reference_line(job.ref)
        for case in self.gateway.list_cases(include_resolved=True, after_time=since):
            if case.subject != new_case.subject:
                continue
            if any(marker in c.body for c in self.gateway.communications(case.case_id)):
                return case.case_id
        return None


def reference_line(ref: str) -> str:
    return render.console_text("case_body_ref", ref=ref)  # AWS reads plain text, not mrkdwn


def opening_body(description: str, ref: str) -> str:
    """The case's opening communication: what the person wrote, then the journal reference."""
    return f"{description}\n\n{reference_line(ref)}"


def _new_case(raw: dict[str, Any]) -> NewCase:
    return NewCase(**{**raw, "cc_email_addresses": tuple(raw.get("cc_email_addresses") or ())})
