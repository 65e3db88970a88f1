"""The case lifecycle in domain terms: open, link, reply, resolve, and the cards that show a case.

Nothing here reads a Slack payload. Slack is used only to post and update what templates render.

Records this module owns in the store:
- cases:    case_id -> CaseRecord (what the bot knows of a followed case, who opened it from Slack)
- links:    "case_id|channel" -> CaseLink (the card in that channel; its thread is the case's thread)
- threads:  "channel|thread_ts" -> case_id
- outbound: outbound_key(case_id, body) -> OutboundRecord (communications sent from Slack)
- events:   "msg:channel:ts" -> PendingReply (a thread reply on its way to AWS, then its outcome)
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot import render
from bot.aws import model as aws_model
from bot.domain import Attachment, Case, Communication, NewCase
from bot.errors import AttachmentProblem, BotError, NotAllowed, UserInputError, slack_error

if TYPE_CHECKING:
    from bot.services import Services

logger = logging.getLogger(__name__)
AWS_LIMITS = aws_model.limits()

MAX_BODY = AWS_LIMITS.communication_body_max
MAX_ATTACHMENTS_PER_SET = AWS_LIMITS.attachments_per_set
MAX_ATTACHMENT_BYTES = AWS_LIMITS.attachment_max_bytes
MAX_CC = AWS_LIMITS.cc_max
RECENT_IN_SHOW = 5
CARD_EVENT_TYPE = "aws_support_case"  # message metadata that marks a case card
EVENT_MEMORY_SECONDS = 2 * 24 * 3600  # how long a handled thread reply is remembered against redelivery


def outbound_key(case_id: str, body: str) -> str:
    """Identifies a communication the bot sent from Slack, so the poller never echoes it back."""
    return hashlib.sha256(f"{case_id}\x1f{body.strip()}".encode()).hexdigest()[:32]


def split_body(prefix: str, text: str, limit: int = MAX_BODY) -> list[str]:
    """Split a long reply into bodies within AWS's limit, in order, each attributed; nothing dropped."""
    if len(prefix) + len(text) <= limit:
        return [prefix + text]
    # Room for a "(n/N) " marker; 99 parts of ~7,900 characters is far beyond Slack's 40,000.
    room = limit - len(prefix) - len("(99/99) ")
    parts: list[str] = []
    rest = text
    while rest:
        if len(rest) <= room:
            parts.append(rest)
            break
        cut = rest.rfind("\n", room // 2, room)
        if cut == -1:
            cut = rest.rfind(" ", room // 2, room)
        cut = room if cut == -1 else cut
        parts.append(rest[:cut])
        rest = rest[cut:].lstrip("\n ") if cut != room else rest[cut:]
    total = len(parts)
    return [f"{prefix}({i}/{total}) {part}" for i, part in enumerate(parts, start=1)]


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

    @classmethod
    def from_case(cls, case: Case, opened_by: str = "") -> CaseRecord:
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
        )


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


@dataclass
class SlackFile:
    """A file a person attached in Slack, to be downloaded with the bot token."""

    file_id: str
    name: str
    size: int
    url: str

    @classmethod
    def from_payload(cls, raw: dict[str, Any]) -> SlackFile:
        return cls(
            file_id=raw.get("id", ""),
            name=raw.get("name") or raw.get("title") or "attachment",
            size=int(raw.get("size") or 0),
            url=raw.get("url_private_download") or raw.get("url_private") or "",
        )


@dataclass
class PendingReply:
    """A reply on its way to AWS. Kept until every part is sent, so a crash resumes it."""

    case_id: str
    channel: str
    thread_ts: str
    message_ts: str
    user: str
    bodies: list[str]
    files: list[dict[str, Any]] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    sent_parts: int = 0
    state: str = "sending"  # sending | sent | failed
    confirm_with_reaction: bool = True
    mirror_text: str = ""  # posted in the thread when the reply did not come from the thread
    prefix: str = ""  # the attribution, for extra messages that carry only files
    created_at: float = field(default_factory=time.time)


@dataclass
class ReceivedReply:
    """A reply noted before Slack's ack and not yet taken up: enough to send it after a crash."""

    kind: str  # thread | command
    ref: str  # the case ID (thread) or the case reference the person typed (command)
    channel: str
    user: str
    text: str
    thread_ts: str = ""
    message_ts: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    state: str = "received"
    created_at: float = field(default_factory=time.time)


class CaseService:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        self.gateway = services.gateway
        self.slack = services.slack
        self._in_flight: set[str] = set()
        self._in_flight_lock = threading.Lock()
        self._names: dict[str, tuple[float, str]] = {}

    # Looking cases up ---------------------------------------------------------------------

    def get_case(self, ref: str) -> Case:
        return self.gateway.get_case(ref)

    def record(self, case_id: str) -> CaseRecord | None:
        raw = self.store.table("cases").get(case_id)
        return CaseRecord(**raw) if raw else None

    def links_for(self, case_id: str) -> list[CaseLink]:
        links = self.store.table("links")
        return [CaseLink(**raw) for key, raw in links.items() if key.startswith(f"{case_id}|")]

    def link_in(self, case_id: str, channel: str) -> CaseLink | None:
        raw = self.store.table("links").get(f"{case_id}|{channel}")
        return CaseLink(**raw) if raw else None

    def case_for_thread(self, channel: str, thread_ts: str) -> str | None:
        return self.store.table("threads").get(f"{channel}|{thread_ts}")

    def followed_case_ids(self) -> list[str]:
        """Every case linked to at least one channel."""
        return sorted({raw["case_id"] for raw in self.store.table("links").values()})

    def links_in_channel(self, channel: str) -> list[CaseLink]:
        return [CaseLink(**raw) for raw in self.store.table("links").values() if raw["channel"] == channel]

    def open_cases_in_channel(self, channel: str) -> list[Case]:
        case_ids = [link.case_id for link in self.links_in_channel(channel)]
        cases = self.gateway.describe_cases(case_ids, include_communications=False)
        return [case for case in cases if not case.is_resolved]

    def open_cases_of_account(self, user: str) -> list[Case]:
        if not self.services.settings.is_admin(user):
            raise NotAllowed("not_allowed_list_all")
        return self.gateway.list_cases(include_resolved=False)

    def case_with_history(self, ref: str) -> tuple[Case, list[Communication]]:
        case = self.gateway.get_case(ref)
        communications = self.gateway.communications(case.case_id, limit=RECENT_IN_SHOW)
        return case, communications

    # Opening and linking -----------------------------------------------------------------

    def receive_new_case(
        self, new_case: NewCase, files: Sequence[SlackFile], *, opened_by: str, channel: str, form_id: str = ""
    ) -> str | None:
        """Note a submitted Create case form before its ack closes the modal; returns its key.

        None when this form (`form_id`: Slack's view ID) was noted already: a second submit of
        the same modal, after a crash hid the first one's ack, must not open a second case.
        """
        key = f"create:{form_id or f'{opened_by}:{time.time_ns()}'}"
        claimed = self.store.table("events").claim(
            key,
            {
                "state": "received",
                "new_case": asdict(new_case),
                "files": [asdict(f) for f in files],
                "opened_by": opened_by,
                "channel": channel,
                "created_at": time.time(),
            },
        )
        return key if claimed else None

    def open_noted_case(self, key: str) -> None:
        """Open the case noted at `key` (once, also across a crash) and tell the person how it went."""
        events = self.store.table("events")
        noted = events.get(key)
        if not noted or noted.get("state") in ("sent", "failed"):
            return
        new_case = NewCase(
            **{**noted["new_case"], "cc_email_addresses": tuple(noted["new_case"]["cc_email_addresses"])}
        )
        user, channel = noted["opened_by"], noted["channel"]
        try:
            case_id = noted.get("case_id") or self._find_interrupted_create(noted, new_case)
            if case_id:
                case, card_error = self._card_for_opened_case(case_id, channel, user)
            else:
                events.put(key, dict(noted, state="creating", creating_since=time.time()))
                files = [SlackFile(**f) for f in noted["files"]]
                case, _, card_error = self.open_case(
                    new_case,
                    files,
                    opened_by=user,
                    channel=channel,
                    on_created=lambda cid: events.put(key, dict(noted, state="created", case_id=cid)),
                )
        except BotError as error:
            reason = render.error_text(error)
            opened = (events.get(key) or {}).get("case_id")
            # Kept (pruned after EVENT_MEMORY_SECONDS) so the same form submitted again is known.
            events.put(key, dict(noted, state="failed", case_id=opened))
            if opened:
                # CreateCase went through; only what followed failed. Saying "not opened" would
                # make the person open it again.
                self.tell(channel, user, render.text("case_opened_without_card", case_id=opened, reason=reason))
                return
            self.tell(
                channel,
                user,
                render.text("case_open_failed", reason=reason, subject=new_case.subject, description=new_case.body),
            )
            return
        events.put(key, dict(noted, state="sent", case_id=case.case_id))
        if card_error is not None:
            reason = render.error_text(card_error)
            self.tell(channel, user, render.text("case_opened_card_failed", case=case, reason=reason))

    def _find_interrupted_create(self, noted: dict[str, Any], new_case: NewCase) -> str | None:
        """A crash while CreateCase was under way: did AWS open it? (CreateCase has no idempotency token.)"""
        if noted.get("state") != "creating":
            return None
        since = datetime.fromtimestamp(noted["creating_since"] - 60, UTC).isoformat()
        known = self.store.table("cases")
        for case in self.gateway.list_cases(include_resolved=True, after_time=since):
            same = case.subject == new_case.subject and case.service_code == new_case.service_code
            if same and case.case_id not in known:  # a case the bot already knows is another one
                return case.case_id
        return None

    def _card_for_opened_case(self, case_id: str, channel: str, user: str) -> tuple[Case, BotError | None]:
        case = self.gateway.get_case(case_id, include_communications=False)
        intent = self.store.table("events").get(f"card:{case_id}|{channel}")
        if intent is not None:
            self._resume_card(f"card:{case_id}|{channel}", intent)  # the card may be in Slack already
        if self.link_in(case_id, channel) is not None:
            return case, None
        try:
            self.post_card(case, channel, linked_by=user, opened_by=user)
        except BotError as error:
            return case, error
        return case, None

    def tell(self, channel: str, user: str, text: str) -> None:
        """An ephemeral note to the person in the channel; a DM when the bot cannot post there."""
        try:
            self.slack.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError:
            try:
                self.slack.chat_postMessage(channel=user, text=text)
            except SlackApiError as exc:
                logger.warning("could not tell %s: %s", user, slack_error(exc))

    def open_case(
        self,
        new_case: NewCase,
        files: Sequence[SlackFile],
        *,
        opened_by: str,
        channel: str,
        on_created: Callable[[str], None] | None = None,
    ) -> tuple[Case, CaseLink | None, BotError | None]:
        """Upload the files, CreateCase, then post the card; a card Slack refused comes back as an error."""
        attachment_set_id = self.upload_files(files) if files else None
        if attachment_set_id:
            new_case = NewCase(**{**asdict(new_case), "attachment_set_id": attachment_set_id})
        case_id = self.gateway.create_case(new_case)
        if on_created is not None:
            on_created(case_id)
        # The opening description is ours: the poller must never echo it into the thread. (A crash
        # before this line leaves no card, hence no thread to echo into.)
        self.store.table("outbound").put(
            outbound_key(case_id, new_case.body), {"case_id": case_id, "state": "sent", "at": time.time()}
        )
        # The case exists from here on: remember who opened it before anything else can fail.
        self.store.table("cases").put(
            case_id,
            asdict(
                CaseRecord(
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
                )
            ),
        )
        case = self.gateway.get_case(case_id, include_communications=False)
        try:
            link = self.post_card(case, channel, linked_by=opened_by, opened_by=opened_by)
        except BotError as error:
            # The case is open at AWS whatever Slack says; the caller tells the person how to link it.
            return case, None, error
        return case, link, None

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
        self.store.table("links").delete(f"{case.case_id}|{channel}")
        self.store.table("threads").delete(f"{channel}|{link.card_ts}")
        self._update_card(case, link, unlinked_by=user)
        return case

    def post_card(self, case: Case, channel: str, *, linked_by: str, opened_by: str | None = None) -> CaseLink:
        """Posts the case card in the channel; its thread becomes the case's thread there."""
        record = self._remember(case, opened_by)
        intent = f"card:{case.case_id}|{channel}"
        # Recorded before posting: after a crash, resume_pending() finds the card by its metadata.
        self.store.table("events").put(
            intent, {"state": "posting", "case_id": case.case_id, "channel": channel, "linked_by": linked_by}
        )
        try:
            response = self._post(
                channel=channel,
                metadata={"event_type": CARD_EVENT_TYPE, "event_payload": {"case_id": case.case_id}},
                **self._card_message(case, record),
            )
        except BotError:
            # Slack answered no (not in channel, …): nothing to find later, and no card to post unasked.
            self.store.table("events").delete(intent)
            raise
        link = self._save_link(case.case_id, response["channel"], response["ts"], linked_by)
        self.store.table("events").delete(intent)
        return link

    def _save_link(self, case_id: str, channel: str, card_ts: str, linked_by: str) -> CaseLink:
        link = CaseLink(case_id=case_id, channel=channel, card_ts=card_ts, linked_by=linked_by, linked_at=time.time())
        self.store.table("threads").put(f"{channel}|{card_ts}", case_id)
        self.store.table("links").put(f"{case_id}|{channel}", asdict(link))
        return link

    def _resume_card(self, key: str, intent: dict[str, Any]) -> None:
        """A card whose posting a crash interrupted: adopt it if Slack has it, else post it now."""
        case_id, channel = intent["case_id"], intent["channel"]
        if self.link_in(case_id, channel) is None:
            try:
                card_ts = self._find_card(case_id, channel)
            except SlackApiError as exc:
                # Not knowing whether the card is there, posting another could double it: try later.
                logger.warning("could not read %s back to find the card of %s: %s", channel, case_id, slack_error(exc))
                return
            if card_ts:
                self._save_link(case_id, channel, card_ts, intent.get("linked_by", ""))
            else:
                try:
                    case = self.gateway.get_case(case_id)
                except BotError as error:
                    if getattr(error, "retryable", False):
                        raise
                    logger.warning("dropping the card of %s for %s: %s", case_id, channel, error)
                    self.store.table("events").delete(key)
                    return
                self.post_card(case, channel, linked_by=intent.get("linked_by", ""))
        self.store.table("events").delete(key)

    def _find_card(self, case_id: str, channel: str) -> str | None:
        history = self.slack.conversations_history(channel=channel, limit=100, include_all_metadata=True)
        for message in history.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == CARD_EVENT_TYPE and payload.get("case_id") == case_id:
                return message.get("ts")
        return None

    def update_cards(self, case: Case) -> None:
        """Redraw every card of the case in place (chat.update) and remember its status."""
        self._remember(case)
        for link in self.links_for(case.case_id):
            self._update_card(case, link)

    def refresh(self, ref: str) -> Case:
        case = self.gateway.get_case(ref, include_communications=False)
        self.update_cards(case)
        return case

    def _remember(self, case: Case, opened_by: str | None = None) -> CaseRecord:
        previous = self.record(case.case_id)
        if opened_by is None:
            opened_by = previous.opened_by if previous else ""
        record = CaseRecord.from_case(case, opened_by=opened_by)
        self.store.table("cases").put(case.case_id, asdict(record))
        return record

    def _card_message(self, case: Case, record: CaseRecord, **extra: Any) -> dict[str, Any]:
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

    def _update_card(self, case: Case, link: CaseLink, **extra: Any) -> None:
        record = self.record(case.case_id) or CaseRecord.from_case(case)
        try:
            self.slack.chat_update(channel=link.channel, ts=link.card_ts, **self._card_message(case, record, **extra))
        except SlackApiError as exc:
            # A deleted card or a channel the bot left: the case itself is fine, so keep going.
            logger.warning("could not update card of %s in %s: %s", case.case_id, link.channel, slack_error(exc))

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

    # Resolving ---------------------------------------------------------------------------

    def may_resolve(self, user: str, case_id: str, channel: str) -> bool:
        if self.services.settings.is_admin(user):
            return True
        record = self.record(case_id)
        if record and record.opened_by == user:
            return True
        link = self.link_in(case_id, channel)
        return bool(link and link.linked_by == user)

    def resolve(self, ref: str, user: str, channel: str) -> Case:
        case = self.gateway.get_case(ref, include_communications=False)
        if not self.may_resolve(user, case.case_id, channel):
            raise NotAllowed("not_allowed_resolve", ref=case.display_id)
        if case.is_resolved:
            self.update_cards(case)
            return case
        self.gateway.resolve_case(case.case_id)
        case = self.gateway.get_case(case.case_id, include_communications=False)
        self.update_cards(case)
        return case

    # Replying ----------------------------------------------------------------------------

    def display_name(self, user: str) -> str:
        cached = self._names.get(user)
        if cached and time.monotonic() - cached[0] < 3600:
            return cached[1]
        name = user
        try:
            profile = self.slack.users_info(user=user)["user"]
            name = (
                profile.get("profile", {}).get("display_name")
                or profile.get("real_name")
                or profile.get("profile", {}).get("real_name")
                or profile.get("name")
                or user
            )
        except SlackApiError as exc:
            logger.warning("users.info %s failed: %s", user, slack_error(exc))
        self._names[user] = (time.monotonic(), name)
        return name

    def display_name_if_known(self, user: str) -> str:
        """A name without asking Slack (for work that must finish before an ack)."""
        cached = self._names.get(user)
        return cached[1] if cached else user

    def attribution(self, user: str) -> str:
        return render.text("reply_attribution", name=self.display_name(user)) + " "

    def receive_command_reply(
        self,
        ref: str,
        text: str,
        *,
        user: str,
        channel: str,
        cc: Sequence[str] = (),
        files: Sequence[SlackFile] = (),
        form_id: str = "",
    ) -> str | None:
        """Note a reply from `/aws-support reply` or the Reply modal before Slack gets its ack.

        Returns the key to hand to reply_from_command; a crash after the ack resumes it from here.
        """
        key = f"cmd:{form_id or f'{user}:{time.time_ns()}'}"
        received = ReceivedReply(
            kind="command",
            ref=ref,
            channel=channel,
            user=user,
            text=text,
            files=[asdict(f) for f in files],
            cc=list(cc),
        )
        if not self.store.table("events").claim(key, asdict(received)):
            return None  # this form was noted already (a second submit of the same modal)
        return key

    def reply_from_command(self, key: str) -> Case:
        """Send a noted command reply to AWS, then mirror it into the case's linked thread."""
        record = self.store.table("events").get(key)
        if not record or record.get("state") != "received":
            raise UserInputError("reply_already_handled")
        received = ReceivedReply(**record)
        try:
            case = self.gateway.get_case(received.ref, include_communications=False)
        except BotError:
            # Nothing was sent; the person is told by the caller. Not to be retried at every start.
            self.store.table("events").put(key, dict(record, state="failed"))
            raise
        link = self.link_in(case.case_id, received.channel) or next(iter(self.links_for(case.case_id)), None)
        prefix = self.attribution(received.user)
        pending = PendingReply(
            prefix=prefix,
            case_id=case.case_id,
            channel=link.channel if link else received.channel,
            thread_ts=link.thread_ts if link else "",
            message_ts=key,
            user=received.user,
            bodies=split_body(prefix, received.text),
            files=received.files,
            cc=received.cc,
            confirm_with_reaction=False,
            mirror_text=received.text,
            created_at=received.created_at,
        )
        self._deliver(key, pending)
        after = self.gateway.get_case(case.case_id, include_communications=False)
        if after.status != case.status:
            self.update_cards(after)  # a reply reopens a resolved case: the card offers Resolve again
        return after

    def receive_thread_reply(
        self, *, channel: str, thread_ts: str, message_ts: str, user: str, text: str, files: Sequence[SlackFile]
    ) -> bool:
        """Note a person's reply in a case thread, before Slack gets its ack (which ends its retries).

        False when it is not a case thread or the reply was noted already (a redelivery).
        """
        case_id = self.case_for_thread(channel, thread_ts)
        if case_id is None:
            return False
        received = ReceivedReply(
            kind="thread",
            ref=case_id,
            channel=channel,
            thread_ts=thread_ts,
            message_ts=message_ts,
            user=user,
            text=text,
            files=[asdict(f) for f in files],
        )
        return self.store.table("events").claim(f"msg:{channel}:{message_ts}", asdict(received))

    def reply_from_thread(
        self, *, channel: str, thread_ts: str, message_ts: str, user: str, text: str, files: Sequence[SlackFile]
    ) -> bool:
        """A person's reply in a case thread. False when ignored (not a case thread, or already handled)."""
        key = f"msg:{channel}:{message_ts}"
        if self.store.table("events").get(key) is None and not self.receive_thread_reply(
            channel=channel, thread_ts=thread_ts, message_ts=message_ts, user=user, text=text, files=files
        ):
            return False
        return self._take_up(key)

    def _take_up(self, key: str) -> bool:
        """Deliver what the record at `key` still needs; False when there is nothing left to do."""
        record = self.store.table("events").get(key) or {}
        state = record.get("state")
        if self._is_in_flight(key):
            return False
        if state == "sending":
            pending = PendingReply(**record)
            try:
                self._deliver(key, pending, resumed=True)
            except BotError as error:
                note = render.text("reply_not_sent", reason=render.error_text(error), text=pending.mirror_text)
                self.tell(pending.channel, pending.user, note)
            return True
        if state != "received":
            return False
        received = ReceivedReply(**record)
        if received.kind == "command":
            try:
                self.reply_from_command(key)
            except BotError as error:
                note = render.text("reply_not_sent", reason=render.error_text(error), text=received.text)
                self.tell(received.channel, received.user, note)
            return True
        prefix = self.attribution(received.user)
        pending = PendingReply(
            prefix=prefix,
            case_id=received.ref,
            channel=received.channel,
            thread_ts=received.thread_ts,
            message_ts=received.message_ts,
            user=received.user,
            bodies=split_body(prefix, plain_text_from_slack(received.text, self.display_name)),
            files=received.files,
            created_at=received.created_at,
        )
        self._deliver(key, pending)
        return True

    def resume_pending(self, submit: Callable[[Callable[[], None], str | None], None] | None = None) -> int:
        """After a crash: finish every case, card and reply that was noted but not fully sent.

        With `submit` (the after-ack work queue), each goes to the queue of its thread or case, so
        it keeps its order with live traffic; without, they run here, one after another.
        Returns how many were taken up.
        """
        resumed = 0
        events = self.store.table("events")
        for key, raw in events.items():
            if not isinstance(raw, dict):
                continue
            state = raw.get("state")
            if state in ("sent", "failed"):
                if raw.get("created_at", 0) < time.time() - EVENT_MEMORY_SECONDS:
                    events.delete(key)  # Slack redelivers within minutes: older markers only take space
                continue
            if key.startswith("create:"):
                job, order = (lambda key=key: self.open_noted_case(key)), None
            elif state == "posting":
                job, order = (lambda key=key, raw=raw: self._resume_card(key, raw)), raw.get("case_id")
            elif state in ("received", "sending"):
                thread = f"{raw.get('channel')}|{raw.get('thread_ts')}" if raw.get("thread_ts") else None
                job, order = (lambda key=key: self._take_up(key)), thread or raw.get("case_id") or raw.get("ref")
            else:
                continue
            resumed += 1
            if submit is not None:
                submit(lambda job=job, key=key: self._resume_one(key, job), order)
            else:
                self._resume_one(key, job)
        return resumed

    def _resume_one(self, key: str, job: Callable[[], object]) -> None:
        try:
            job()
        except BotError as error:
            logger.warning("could not resume %s: %s", key, error)
        except Exception:  # one record must not stop the others from being resumed
            logger.exception("could not resume %s", key)

    def _is_in_flight(self, key: str) -> bool:
        with self._in_flight_lock:
            return key in self._in_flight

    def _deliver(self, key: str, pending: PendingReply, *, resumed: bool = False) -> None:
        with self._in_flight_lock:
            if key in self._in_flight:
                return
            self._in_flight.add(key)
        events = self.store.table("events")
        current = events.get(key) or {}
        if current.get("state") in ("sent", "failed"):
            # Another thread finished it between our look and our claim: nothing left to send.
            with self._in_flight_lock:
                self._in_flight.discard(key)
            return
        if resumed and current.get("state") == "sending":
            pending = PendingReply(**current)  # the freshest progress, not a snapshot taken earlier
        try:
            events.put(key, asdict(pending))
            self._send_parts(key, pending, check_aws_first=resumed)
            pending.state = "sent"
            events.put(key, asdict(pending))
            # A reply reopens a resolved case: let the poller look at it on its next cycle.
            self.services.sync.wake(pending.case_id)
        except BotError as error:
            pending.state = "failed"
            events.put(key, asdict(pending))
            if not pending.confirm_with_reaction:
                raise  # a command or a modal: the person is answered where they asked
            self._report_failure(pending, error)
            return
        except Exception:
            # Not a failure we know (a library raised something new): never leave it "sending" to
            # be retried at every start, and never leave the person without an answer.
            logger.exception("reply %s failed", key)
            pending.state = "failed"
            events.put(key, asdict(pending))
            if not pending.confirm_with_reaction:
                raise
            self._report_failure(pending, BotError())
            return
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(key)
        self._confirm(pending)

    def _send_parts(self, key: str, pending: PendingReply, *, check_aws_first: bool) -> None:
        file_groups = _groups(pending.files, MAX_ATTACHMENTS_PER_SET)
        bodies = list(pending.bodies)
        # More files than parts can carry: the extra files go in extra attributed messages.
        while len(file_groups) > len(bodies):
            bodies.append(pending.prefix + render.text("more_attachments_body"))
        if bodies != pending.bodies:
            pending.bodies = bodies
            self.store.table("events").put(key, asdict(pending))
        already_at_aws = self._bodies_at_aws(pending.case_id) if check_aws_first else set()
        outbound = self.store.table("outbound")
        for index in range(pending.sent_parts, len(bodies)):
            body = bodies[index]
            out_key = outbound_key(pending.case_id, body)
            # Written before the call: whatever happens next, the poller will not echo this back.
            outbound.put(out_key, {"case_id": pending.case_id, "state": "sending", "at": time.time()})
            if out_key not in already_at_aws:
                files = file_groups[index] if index < len(file_groups) else []
                attachment_set_id = self.upload_files([SlackFile(**f) for f in files]) if files else None
                self.gateway.add_communication(
                    pending.case_id, body, cc_email_addresses=pending.cc, attachment_set_id=attachment_set_id
                )
            outbound.put(out_key, {"case_id": pending.case_id, "state": "sent", "at": time.time()})
            pending.sent_parts = index + 1
            self.store.table("events").put(key, asdict(pending))

    def _bodies_at_aws(self, case_id: str) -> set[str]:
        """Keys of the case's recent communications, to tell what a crash already delivered."""
        recent = self.gateway.communications(case_id, limit=100)
        return {outbound_key(case_id, c.body) for c in recent}

    def _confirm(self, pending: PendingReply) -> None:
        if pending.confirm_with_reaction:
            try:
                self.slack.reactions_add(channel=pending.channel, timestamp=pending.message_ts, name="white_check_mark")
            except SlackApiError as exc:
                if slack_error(exc) != "already_reacted":
                    logger.warning("could not confirm reply in %s: %s", pending.channel, slack_error(exc))
        elif pending.thread_ts and pending.mirror_text:
            try:
                self._post(
                    channel=pending.channel,
                    thread_ts=pending.thread_ts,
                    text=render.text(
                        "reply_mirror",
                        name=self.display_name(pending.user),
                        user=pending.user,
                        text=pending.mirror_text,
                    ),
                )
            except BotError as error:
                logger.warning("could not mirror reply into %s: %s", pending.channel, error)

    def _report_failure(self, pending: PendingReply, error: BotError) -> None:
        if not pending.thread_ts:
            return
        try:
            self._post(
                channel=pending.channel,
                thread_ts=pending.thread_ts,
                text=render.text("reply_failed", user=pending.user, reason=render.error_text(error)),
            )
        except BotError as slack_error:
            logger.warning("could not report a failed reply in %s: %s", pending.channel, slack_error)

    # Files -------------------------------------------------------------------------------

    def upload_files(self, files: Sequence[SlackFile]) -> str:
        """Download the files from Slack with the bot token and put them in one attachment set."""
        if len(files) > MAX_ATTACHMENTS_PER_SET:
            raise AttachmentProblem("attachment_limit", code="AttachmentLimitExceeded")
        for f in files:
            if f.size > MAX_ATTACHMENT_BYTES:
                raise AttachmentProblem("attachment_size_limit", code="AttachmentSetSizeLimitExceeded", name=f.name)
        attachments = [Attachment(file_name=f.name, data=self.download(f)) for f in files]
        return self.gateway.add_attachments(attachments)

    def download(self, file: SlackFile) -> bytes:
        import urllib.request

        if not file.url:
            try:
                info = self.slack.files_info(file=file.file_id)["file"]
            except (SlackApiError, OSError) as exc:
                raise BotError("file_download_failed", name=file.name) from exc
            file = SlackFile.from_payload(info)
        if not self._is_slack_url(file.url):
            # The bot token goes only to Slack: a forged payload must not make us send it elsewhere.
            raise BotError("file_download_failed", name=file.name)
        request = urllib.request.Request(
            file.url, headers={"Authorization": f"Bearer {self.services.settings.slack_bot_token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - Slack's own file URL
                data = response.read(MAX_ATTACHMENT_BYTES + 1)
        except OSError as exc:
            raise BotError("file_download_failed", name=file.name) from exc
        if len(data) > MAX_ATTACHMENT_BYTES:
            raise AttachmentProblem("attachment_size_limit", code="AttachmentSetSizeLimitExceeded", name=file.name)
        return data

    def _is_slack_url(self, url: str) -> bool:
        from urllib.parse import urlsplit

        host = (urlsplit(url).hostname or "").lower()
        api_host = (urlsplit(self.services.settings.slack_api_url).hostname or "").lower()
        return host == api_host or host == "slack.com" or host.endswith(".slack.com")

    # Slack posting -----------------------------------------------------------------------

    def _post(self, **kwargs: Any) -> dict[str, Any]:
        try:
            return self.slack.chat_postMessage(**kwargs).data  # type: ignore[return-value]
        except SlackApiError as exc:
            raise BotError("slack_post_failed", error=slack_error(exc), channel=kwargs.get("channel", "")) from exc


def _groups(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def plain_text_from_slack(text: str, name_of: Any = None) -> str:
    """Slack's markup (<@U1>, <#C1|name>, <url|label>, &amp;) turned into the plain text AWS shows."""
    import re

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


def case_ids(cases: Iterable[Case]) -> list[str]:
    return [c.case_id for c in cases]
