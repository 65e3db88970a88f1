"""A case's steward (its opener from Slack, else its first linker) and admins alone resolve, reopen and unlink."""

from __future__ import annotations

from tests.cases.helpers import link_case, open_case_at_aws
from tests.cases.test_card_buttons import click
from tests.cases.test_modal import open_modal, values


def refused(text: str, steward: str) -> bool:
    return f"<@{steward}>" in text and "admin" in text


def test_a_stranger_may_not_unlink_the_stewards_link(bot):
    case = open_case_at_aws(bot)
    card = link_case(bot, case, user="U1")
    bot.command(f"unlink {case.display_id}", user="U2")
    assert refused(bot.wait_for_response()["text"], "U1")
    assert bot.services.cases.case_for_thread("C1", card["ts"]) == case.case_id


def test_linking_again_elsewhere_makes_nobody_a_steward(bot):
    case = open_case_at_aws(bot)
    link_case(bot, case, user="U1", channel="C1")
    card = link_case(bot, case, user="U2", channel="C2")

    bot.command(f"resolve {case.display_id}", user="U2", channel="C2")
    assert refused(bot.wait_for_response()["text"], "U1")
    click(bot, card, "case_resolve", user="U2")
    [refusal] = bot.slack.wait_for("chat.postEphemeral")
    assert refused(refusal.params["text"], "U1")
    assert bot.sandbox.calls["ResolveCase"] == 0

    bot.command(f"resolve {case.display_id}", user="U1", channel="C1")
    assert "is resolved" in bot.wait_for_response()["text"]
    assert bot.services.gateway.get_case(case.case_id).status == "resolved"


def test_the_first_linker_of_a_case_opened_elsewhere_is_its_steward_even_after_unlinking(bot):
    case = open_case_at_aws(bot)
    link_case(bot, case, user="U3", channel="C3")
    bot.command(f"unlink {case.display_id}", user="U3", channel="C3")
    assert "no longer synced" in bot.wait_for_response()["text"]
    link_case(bot, case, user="U2", channel="C2")

    bot.command(f"unlink {case.display_id}", user="U2", channel="C2")
    assert refused(bot.wait_for_response()["text"], "U3")
    bot.command(f"resolve {case.display_id}", user="U3", channel="C3")
    assert "is resolved" in bot.wait_for_response()["text"]


def test_the_opener_from_slack_is_the_steward_and_the_linker_elsewhere_is_not(bot):
    view = open_modal(bot)
    bot.requests.view_submission(view, values=values())
    [post] = bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=15)
    bot.services.work.wait_idle(timeout=10)
    case_id = bot.services.cases.case_for_thread("C1", post.response["ts"])
    case = bot.services.gateway.get_case(case_id)
    link_case(bot, case, user="U2", channel="C2")
    bot.command(f"resolve {case.display_id}", user="U2", channel="C2")
    assert refused(bot.wait_for_response()["text"], "U1")
    assert bot.services.cases.record(case_id).steward == "U1"


def test_admins_may_unlink_and_resolve_any_case(bot):
    case = open_case_at_aws(bot)
    link_case(bot, case, user="U1", channel="C1")
    link_case(bot, case, user="U2", channel="C2")
    bot.command(f"unlink {case.display_id}", user="UADMIN", channel="C1")
    assert "no longer synced" in bot.wait_for_response()["text"]
    bot.command(f"resolve {case.display_id}", user="UADMIN", channel="C2")
    assert "is resolved" in bot.wait_for_response()["text"]


def test_only_the_steward_gets_the_reopen_modal(bot):
    case = open_case_at_aws(bot)
    link_case(bot, case, user="U1", channel="C1")
    card = link_case(bot, case, user="U2", channel="C2")
    bot.services.cases.resolve(case.case_id, "U1", "C1")
    card = bot.slack.message("C2", card["ts"])

    click(bot, card, "case_reopen", user="U2")
    [refusal] = bot.slack.wait_for("chat.postEphemeral")
    assert refused(refusal.params["text"], "U1")
    assert not bot.slack.calls("views.open")

    click(bot, card, "case_reopen", user="U1")
    [opened] = bot.slack.wait_for("views.open")
    assert "Reopen" in opened.response["view"]["title"]["text"]


def test_a_record_from_before_stewards_takes_its_opener_or_earliest_linker(bot):
    cases, links = bot.services.store.table("cases"), bot.services.store.table("links")
    old = {
        "case_id": "case-1", "display_id": "1", "subject": "s", "status": "opened", "severity_code": "low",
        "service_code": "x", "category_code": "y", "submitted_by": "", "time_created": "", "language": "en",
    }  # fmt: skip

    def link(case_id, channel, by, at):
        links.put(f"{case_id}|{channel}", {"case_id": case_id, "channel": channel, "card_ts": str(at),
                                           "linked_by": by, "linked_at": at})  # fmt: skip

    cases.put("case-1", dict(old, opened_by=""))
    link("case-1", "C2", "U2", 20.0)
    link("case-1", "C1", "U1", 10.0)
    cases.put("case-2", dict(old, case_id="case-2", opened_by="U9"))
    link("case-2", "C1", "U1", 5.0)

    assert bot.services.cases.record("case-1").steward == "U1"
    assert bot.services.cases.record("case-2").steward == "U9"
    links.delete("case-1|C1")  # the migrated steward is kept, not derived again
    assert bot.services.cases.record("case-1").steward == "U1"


def test_remembering_a_case_never_hands_its_stewardship_to_whoever_is_named_opener(bot):
    # Only CreateCase's own answer (remember_opened) or the first link name a steward; a caller
    # that believes someone opened a case (a guess after a lost answer) must not move it.
    case = open_case_at_aws(bot)
    link_case(bot, case, user="U1")
    record = bot.services.cases.records.remember(case, opened_by="U2")
    assert record.steward == "U1"
    assert bot.services.cases.record(case.case_id).steward == "U1"
