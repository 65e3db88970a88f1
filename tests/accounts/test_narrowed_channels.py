"""Review 29 (B2): "Case content is shown only in channels allowed to use the case's account". An operator
takes a channel off an account's `channels` (it was the wrong channel, or the channel was opened to
contractors) and restarts the bot: the search pages and the watches re-check the rule when they show a
case, but the sync keeps posting the account's new AWS communications (and its status lines) into the
case's thread in the channel that may no longer use the account, and `list` still lists the case there.
The bot unlinks such a channel at start, saying so in one line."""

from __future__ import annotations

from tests.accounts.e2e import ACCOUNTS, ALIAS_OF, open_case_in
from tests.accounts.test_search import start_with_accounts
from tests.sync.helpers import communication_messages, shown_text


def narrowed(alias, channels):
    return [dict(a, channels=channels) if a["alias"] == alias else a for a in ACCOUNTS]


def card_in_cprod(fake_slack, accounts_sandbox, tmp_path, *, synced=False):
    """A case of prod with its card in CPROD, made by a bot on the accounts file as it was, then stopped."""
    first = start_with_accounts(fake_slack, accounts_sandbox, tmp_path, ACCOUNTS, "before")
    try:
        case = open_case_in(first, "prod", subject="Payments database down")
        link = first.services.cases.post_card(case, "CPROD", linked_by="U1")
        if synced:
            first.services.sync.run_cycle()
    finally:
        first.stop()
    return case, link


def test_a_channel_taken_off_an_account_gets_none_of_its_cases_content_any_more(fake_slack, accounts_sandbox, tmp_path):
    case, link = card_in_cprod(fake_slack, accounts_sandbox, tmp_path, synced=True)

    # prod may now be used only in CPROD2: CPROD is no longer one of its channels.
    second = start_with_accounts(fake_slack, accounts_sandbox, tmp_path, narrowed("prod", ["CPROD2"]), "after")
    try:
        assert not second.services.accounts.require("prod").allowed_in("CPROD")
        prod = accounts_sandbox.accounts.account(ALIAS_OF["prod"])
        prod.add_aws_reply(case.case_id, "root cause: the primary's disk")
        second.services.sync.run_cycle()
        shown = [shown_text(m) for m in communication_messages(second, "CPROD", link.thread_ts)]
        assert shown == [], f"prod's new communication was posted in CPROD: {shown}"
    finally:
        second.stop()


def test_a_reply_in_a_channel_taken_off_an_account_does_not_reach_the_accounts_case(
    fake_slack, accounts_sandbox, tmp_path
):
    case, link = card_in_cprod(fake_slack, accounts_sandbox, tmp_path)
    second = start_with_accounts(fake_slack, accounts_sandbox, tmp_path, narrowed("prod", ["CPROD2"]), "after")
    try:
        fake_slack.add_user("U7", real_name="Contractor", display_name="contractor")
        fake_slack.clear()
        second.user_message("CPROD", "please also raise our limits", user="U7", thread_ts=link.thread_ts)
        assert second.services.work.wait_idle(timeout=20)
        bodies = [c.body for c in second.services.gateways["prod"].communications(case.case_id)]
        assert not any("raise our limits" in body for body in bodies), "sent from a channel prod may not use"
        # Review30: nor is it dropped in silence; only its writer is told, in the thread.
        told = fake_slack.wait_for("chat.postEphemeral", lambda c: c.params.get("channel") == "CPROD")
        assert [(c.params["user"], c.params["thread_ts"]) for c in told] == [("U7", link.thread_ts)]
        assert "not* sent to AWS" in told[0].params["text"] and "account prod" in told[0].params["text"]
        assert case.display_id in told[0].params["text"]
        assert fake_slack.calls("chat.postMessage", lambda c: c.params.get("channel") == "CPROD") == []
    finally:
        second.stop()


def test_the_buttons_of_a_card_in_a_channel_taken_off_an_account_act_no_more(fake_slack, accounts_sandbox, tmp_path):
    from tests.sync.helpers import click_card_button

    case, link = card_in_cprod(fake_slack, accounts_sandbox, tmp_path)
    second = start_with_accounts(fake_slack, accounts_sandbox, tmp_path, narrowed("prod", ["CPROD2"]), "after")
    try:
        click_card_button(second, "CPROD", link.thread_ts, "case_resolve", user="U1")  # U1 is the steward
        assert second.services.work.wait_idle(timeout=20)
        prod = second.services.gateways["prod"]
        assert not prod.get_case(case.case_id, include_communications=False).is_resolved
        told = fake_slack.calls("chat.postEphemeral", lambda c: c.params.get("channel") == "CPROD")
        assert told and "prod" in told[-1].params["text"], told
    finally:
        second.stop()
