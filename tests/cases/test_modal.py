"""The Create case modal: options from DescribeServices, validation on the field, attachments, CreateCase."""

from __future__ import annotations

import json
import time

import pytest

from bot.store.journal import reference
from tests.cases.helpers import CATEGORY, SERVICE, action_ids, card_text, fast_retries


def open_modal(bot, subject="Disk full on db-1"):
    bot.command(f"create {subject}")
    [call] = bot.slack.wait_for("views.open")
    return call.response["view"]


def labels(view):
    return [block["label"]["text"] for block in view["blocks"] if block["type"] == "input"]


def values(
    subject="Disk full on db-1", description="The volume is at 100%.", cc="", files=None, category_block="category"
):
    state = {
        "subject": {"subject": {"type": "plain_text_input", "value": subject}},
        "service": {
            "service": {
                "type": "external_select",
                "selected_option": {"text": {"type": "plain_text", "text": "EC2"}, "value": SERVICE},
            }
        },
        category_block: {
            "category": {
                "type": "static_select",
                "selected_option": {"text": {"type": "plain_text", "text": "General"}, "value": CATEGORY},
            }
        },
        "severity": {
            "severity": {
                "type": "static_select",
                "selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": "normal"},
            }
        },
        "issue_type": {
            "issue_type": {
                "type": "static_select",
                "selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": "technical"},
            }
        },
        "description": {"description": {"type": "plain_text_input", "value": description}},
        "cc": {"cc": {"type": "plain_text_input", "value": cc}},
        "language": {
            "language": {
                "type": "static_select",
                "selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": "en"},
            }
        },
        "attachments": {"attachments": {"type": "file_input", "files": files or []}},
    }
    return state


def test_create_opens_the_form_with_every_field_and_the_subject_filled_in(bot):
    view = open_modal(bot)
    assert view["callback_id"] == "create_case"
    shown = [label.lower() for label in labels(view)]
    for word in (
        "subject",
        "service",
        "category",
        "severity",
        "description",
        "cc",
        "language",
        "issue type",
        "attachments",
    ):
        assert any(word in label for label in shown), word
    subject = next(b for b in view["blocks"] if b["block_id"] == "subject")
    assert subject["element"]["initial_value"] == "Disk full on db-1"
    severity = next(b for b in view["blocks"] if b["block_id"] == "severity")
    assert [o["value"] for o in severity["element"]["options"]] == ["low", "normal", "high", "urgent", "critical"]


def test_service_search_is_served_from_describe_services(bot):
    view = open_modal(bot)
    everything = bot.requests.block_suggestion("service", "", view=view)
    assert len(everything.body["options"]) == 100  # Slack's cap; the account has more
    ec2 = bot.requests.block_suggestion("service", "elastic compute", view=view)
    values_found = [o["value"] for o in ec2.body["options"]]
    assert SERVICE in values_found
    assert all(len(o["text"]["text"]) <= 75 for o in ec2.body["options"])


def test_category_follows_the_chosen_service(bot):
    view = open_modal(bot)
    before = bot.requests.block_suggestion("category", "", view=view)
    assert [o["value"] for o in before.body["options"]] == ["-"]

    chosen = {
        "type": "external_select",
        "action_id": "service",
        "block_id": "service",
        "selected_option": {"text": {"type": "plain_text", "text": "EC2"}, "value": SERVICE},
    }
    bot.requests.block_actions(chosen, view=view, state_values={"service": {"service": chosen}})
    [update] = bot.slack.wait_for("views.update")
    category = next(b for b in update.params["view"]["blocks"] if b["block_id"].startswith("category"))
    options = [o["value"] for o in category["element"]["options"]]
    assert CATEGORY in options and "instance-issue" in options
    with_service = {**view, "state": {"values": {"service": {"service": chosen}}}}
    suggested = bot.requests.block_suggestion("category", "", view=with_service)
    assert CATEGORY in [o["value"] for o in suggested.body["options"]]


def test_submitting_opens_the_case_with_its_attachment_and_posts_the_card(bot):
    bot.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    log = bot.slack.add_file("db-1.log", b"disk full at 03:12\n", "text/plain")
    view = open_modal(bot)
    answer = bot.requests.view_submission(view, values=values(cc="ops@example.com, sre@example.com", files=[log]))
    assert answer.status == 200 and not answer.body  # an empty ack closes the modal

    [post] = bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=15)
    card = bot.slack.message("C1", post.response["ts"])
    assert "Disk full on db-1" in card_text(card)
    assert "<@U1>" in card_text(card)
    assert action_ids(card) == ["case_reply", "case_resolve", "case_refresh"]
    assert bot.sandbox.calls["AddAttachmentsToSet"] == 1 and bot.sandbox.calls["CreateCase"] == 1
    download = bot.slack.calls("file_download")[0]
    assert download.headers["Authorization"] == "Bearer xoxb-test-token"

    bot.services.work.wait_idle(timeout=10)
    case_id = bot.services.cases.case_for_thread("C1", card["ts"])
    case = bot.services.gateway.get_case(case_id)
    assert case.severity_code == "normal" and case.service_code == SERVICE
    assert set(case.cc_email_addresses) == {"ops@example.com", "sre@example.com"}
    [first] = bot.services.gateway.communications(case_id)
    ref = reference(f"create:{view['id']}")
    assert first.body == f"The volume is at 100%.\n\n(opened from Slack · ref {ref})"
    [attachment] = first.attachments
    assert bot.services.gateway.attachment(attachment.attachment_id).data == b"disk full at 03:12\n"


@pytest.mark.parametrize(
    ("changes", "block", "words"),
    [
        ({"subject": "  "}, "subject", "subject"),
        ({"description": ""}, "description", "describe"),
        ({"cc": "ops@example.com, not-an-email"}, "cc", "not-an-email"),
        ({"cc": ", ".join(f"p{i}@example.com" for i in range(11))}, "cc", "at most 10"),
    ],
)
def test_invalid_input_is_answered_on_the_offending_field(bot, changes, block, words):
    view = open_modal(bot)
    answer = bot.requests.view_submission(view, values=values(**changes))
    assert answer.body["response_action"] == "errors"
    assert words in answer.body["errors"][block]
    assert bot.sandbox.calls["CreateCase"] == 0


def test_too_many_or_too_large_attachments_are_refused_on_the_field(bot):
    view = open_modal(bot)
    small = [bot.slack.add_file(f"f{i}.txt", b"x", "text/plain") for i in range(4)]
    answer = bot.requests.view_submission(view, values=values(files=small))
    assert "at most 3" in answer.body["errors"]["attachments"]

    big = bot.slack.add_file("core.dump", b"x", "application/octet-stream")
    big["size"] = 6 * 1024 * 1024
    answer = bot.requests.view_submission(view, values=values(files=[big]))
    assert "core.dump" in answer.body["errors"]["attachments"]
    assert bot.sandbox.calls["AddAttachmentsToSet"] == 0


def test_a_refused_create_case_tells_the_person_and_keeps_what_they_wrote(bot):
    bot.sandbox.inject_fault(operation="CreateCase", code="CaseCreationLimitExceeded", count=1)
    view = open_modal(bot)
    bot.requests.view_submission(view, values=values(description="Precious details of the outage"))
    [note] = bot.slack.wait_for("chat.postEphemeral")
    assert "not* opened" in note.params["text"] or "not opened" in note.params["text"]
    assert "too many cases" in note.params["text"]
    assert "Precious details of the outage" in note.params["text"]
    assert note.params["user"] == "U1"


def test_private_metadata_carries_the_channel(bot):
    bot.command("create", channel="C777")
    [call] = bot.slack.wait_for("views.open")
    assert json.loads(call.response["view"]["private_metadata"]) == {"channel": "C777"}


def test_a_form_acked_before_a_crash_is_opened_after_restart_once(bot_factory):
    from bot.cases.intake import opening_body
    from bot.domain import NewCase

    first = bot_factory()
    cases = first.services.cases
    new_case = NewCase("Queue stuck", SERVICE, CATEGORY, "normal", "Messages pile up.")
    cases.note_new_case(new_case, [], opened_by="U1", channel="C1")
    # And one whose CreateCase went through just before the crash, its answer never recorded.
    disk = NewCase("Disk full", SERVICE, CATEGORY, "low", "Full.")
    lease = cases.note_new_case(disk, [], opened_by="U1", channel="C1")
    cases.journal.save(lease, creating=True)
    ref = cases.journal.get(lease.key).ref
    first.services.gateway.create_case(NewCase("Disk full", SERVICE, CATEGORY, "low", opening_body("Full.", ref)))
    # Another case with the same subject, opened meanwhile by someone else, is not this form's.
    first.services.gateway.create_case(NewCase("Disk full", SERVICE, CATEGORY, "low", "Full, too."))
    db_path = first.db_path
    first.stop()

    second = bot_factory(db_path=db_path)
    assert second.services.cases.recover() == 2
    second.services.work.wait_idle(timeout=10)
    subjects = sorted(c.subject for c in second.services.gateway.list_cases())
    assert subjects == ["Disk full", "Disk full", "Queue stuck"]  # each form once, the other case untouched
    cards = second.slack.calls("chat.postMessage", lambda c: c.params.get("blocks") is not None)
    assert len(cards) == 2
    assert second.sandbox.calls["CreateCase"] == 3  # the two before the crash, and "Queue stuck"
    assert second.services.cases.recover() == 0


def test_the_same_form_submitted_twice_opens_one_case(bot):
    view = open_modal(bot)
    bot.requests.view_submission(view, values=values(subject="Only once"))
    bot.requests.view_submission(view, values=values(subject="Only once"))
    bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=15)
    bot.services.work.wait_idle(timeout=10)
    assert [c.subject for c in bot.services.gateway.list_cases()] == ["Only once"]
    assert bot.sandbox.calls["CreateCase"] == 1


def test_a_case_opened_whose_card_step_failed_is_not_called_unopened(bot):
    bot.sandbox.inject_fault("DescribeCases", "SubscriptionRequiredException", count=1)
    view = open_modal(bot)
    bot.requests.view_submission(view, values=values(subject="Opened anyway"))
    [note] = bot.slack.wait_for("chat.postEphemeral", timeout=15)
    assert "is open at AWS Support" in note.params["text"]
    assert "not* opened" not in note.params["text"]
    assert [c.subject for c in bot.services.gateway.list_cases()] == ["Opened anyway"]


def test_a_case_opened_whose_answer_was_lost_is_found_by_its_reference_not_by_its_subject(bot):
    # Someone else's case with the same subject is already open; this form's CreateCase goes through
    # but its answer is lost (a 5xx or a timeout after AWS did the work). The retry finds this
    # form's own case by the reference line in its body, and opens nothing twice.
    from bot.domain import NewCase

    other = bot.services.gateway.create_case(NewCase("Disk full", SERVICE, CATEGORY, "low", "Someone else's."))
    bot.sandbox.inject_fault("CreateCase", "InternalServerError", after_processing=True)
    view = open_modal(bot)
    bot.requests.view_submission(view, values=values(subject="Disk full", description="Mine."))
    [card] = bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=15)
    bot.services.work.wait_idle(timeout=10)
    assert bot.sandbox.calls["CreateCase"] == 2  # the other person's, and this form's once
    [mine] = [c for c in bot.services.gateway.list_cases() if c.case_id != other]
    assert bot.services.gateway.communications(mine.case_id)[0].body.startswith("Mine.")
    assert bot.services.cases.case_for_thread("C1", card.response["ts"]) == mine.case_id
    assert bot.services.cases.record(mine.case_id).steward == "U1"
    assert bot.services.cases.record(other) is None  # nobody here took the other case for theirs


def test_a_form_whose_connection_dropped_while_aws_still_opened_the_case_opens_one_case(bot):
    # AWS may finish CreateCase after the connection dropped: a look for the form's case made at once
    # finds nothing, and opening it again then makes two AWS cases.
    from bot.sandbox.faults import CONNECTION_DROPPED

    fast_retries(bot, deadline_seconds=30)
    bot.services.cases.intake.unclear_settle_seconds = 5.0  # stands for the minute the bot gives AWS
    bot.sandbox.inject_fault("CreateCase", CONNECTION_DROPPED, late_seconds=1.5)
    view = open_modal(bot)
    bot.requests.view_submission(view, values=values(subject="Opened while AWS was slow"))
    [card] = bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=20)
    time.sleep(2.0)  # the late CreateCase has surely landed
    bot.services.work.wait_idle(timeout=10)
    [case] = bot.services.gateway.list_cases()
    assert bot.services.cases.case_for_thread("C1", card.response["ts"]) == case.case_id


def test_a_form_resumed_after_its_attachment_set_expired_uploads_its_files_again(bot):
    # The files went up, then CreateCase could not be made for two hours (an outage, a crash):
    # AWS keeps a set one hour. The files are still in Slack: they go up again, the case opens.
    from bot.domain import NewCase
    from bot.slack.files import SlackFile

    log = SlackFile.from_payload(bot.slack.add_file("db-1.log", b"disk full at 03:12\n", "text/plain"))
    cases = bot.services.cases
    lease = cases.note_new_case(
        NewCase("Disk full", SERVICE, CATEGORY, "low", "Full."), [log], opened_by="U1", channel="C1"
    )
    cases.journal.save(lease, attachment_set_id=cases.attachments.upload([log]), creating=True)
    bot.sandbox.advance_clock(2 * 3600)

    cases.start(lease)
    [post] = bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=15)
    bot.services.work.wait_idle(timeout=10)
    [case] = bot.services.gateway.list_cases()
    assert bot.sandbox.calls["AddAttachmentsToSet"] == 2 and bot.sandbox.calls["CreateCase"] == 2
    [opening] = bot.services.gateway.communications(case.case_id)
    assert [a.file_name for a in opening.attachments] == ["db-1.log"]
    assert not bot.slack.calls("chat.postEphemeral")  # nobody is told it failed
