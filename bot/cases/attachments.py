"""Files people attach in Slack, checked against AWS Support's limits and put in one attachment set."""

from __future__ import annotations

from collections.abc import Sequence

from bot.aws import model as aws_model
from bot.aws.gateway import SupportGateway
from bot.domain import Attachment
from bot.errors import AttachmentProblem
from bot.slack.files import SlackFile, SlackFiles

MAX_ATTACHMENTS_PER_SET = aws_model.limits().attachments_per_set
MAX_ATTACHMENT_BYTES = aws_model.limits().attachment_max_bytes


class Attachments:
    def __init__(self, files: SlackFiles, gateway: SupportGateway) -> None:
        self.files = files
        self.gateway = gateway

    def upload(self, files: Sequence[SlackFile], *, account: str = "", case_id: str = "") -> str:
        """Download the files from Slack and put them in one attachment set; returns its ID.

        An attachment set belongs to the account it was made in: the one the case is opened in
        (`account`) or the one of the case replied to (`case_id`).
        """
        if len(files) > MAX_ATTACHMENTS_PER_SET:
            raise AttachmentProblem("attachment_limit", code="AttachmentSetSizeLimitExceeded")
        for f in files:
            if f.size > MAX_ATTACHMENT_BYTES:
                raise AttachmentProblem("attachment_size_limit", code="AttachmentSetSizeLimitExceeded", name=f.name)
        attachments = []
        for f in files:
            data = self.files.download(f, MAX_ATTACHMENT_BYTES)
            if len(data) > MAX_ATTACHMENT_BYTES:  # the size Slack declared may be wrong
                raise AttachmentProblem("attachment_size_limit", code="AttachmentSetSizeLimitExceeded", name=f.name)
            attachments.append(Attachment(file_name=f.name, data=data))
        gateway = self.gateway.for_case(case_id) if case_id else self.gateway.in_account(account)
        return gateway.add_attachments(attachments)
