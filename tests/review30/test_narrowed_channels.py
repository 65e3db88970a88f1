"""Review 30 of 97b9a4a and b4347b1: a channel the accounts file took off a case's account is unlinked
from the case at start, and the card's Refresh and Resolve refuse there. What people in that channel
see of the card they still have is checked here: its thread, its Reply button."""

from __future__ import annotations

import json
import time

from tests.accounts.e2e import ACCOUNTS, ALIAS_OF, open_case_in
from tests.accounts.test_narrowed_channels import card_in_cprod, narrowed
from tests.accounts.test_search import start_with_accounts
from tests.sync.helpers import click_card_button


def told_in_cprod(fake_slack):
    ephemeral = fake_slack.calls("chat.postEphemeral", lambda c: c.params.get("channel") == "CPROD")
    posted = fake_slack.calls(
        "chat.postMessage", lambda c: c.params.get("channel") == "CPROD" and "prod" in json.dumps(c.params)
    )
    return ephemeral + posted


def test_the_reply_button_of_a_card_taken_off_the_account_refuses_before_the_form(
    fake_slack, accounts_sandbox, tmp_path
):
    """b4347b1 checks the channel for Refresh and Resolve; Reply and Reopen open their form through
    _open_reply, unchecked: the person types a reply that is refused only once submitted."""
    _case, link = card_in_cprod(fake_slack, accounts_sandbox, tmp_path)
    second = start_with_accounts(fake_slack, accounts_sandbox, tmp_path, narrowed("prod", ["CPROD2"]), "after")
    try:
        fake_slack.clear()
        click_card_button(second, "CPROD", link.thread_ts, "case_reply", user="U1")
        # The form opens on the prompt pool: wait for it, or for the refusal.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (fake_slack.calls("views.open") or told_in_cprod(fake_slack)):
            time.sleep(0.05)
        assert not fake_slack.calls("views.open"), "the Reply form opened in a channel that may no longer use prod"
        assert told_in_cprod(fake_slack)
    finally:
        second.stop()


def test_a_link_made_by_a_replica_still_on_the_old_accounts_file_gets_none_of_the_accounts_content(
    fake_slack, accounts_sandbox, tmp_path, pg_url
):
    """A rolling deploy: the new replica (prod no longer in CPROD) unlinks at its start; the old one,
    still serving, links a prod case in CPROD (Link here, `link`, a card) after that, then stops. No
    replica starts again, so nothing unlinks it: the sync, which never checks the channel itself, posts
    prod's communications into CPROD until the next restart."""
    from tests.support.harness import BotHarness, write_accounts_file
    from tests.sync.helpers import communication_messages, shown_text

    def start(accounts, name):
        path = write_accounts_file(tmp_path / f"{name}.toml", accounts)
        env = {"BOT_ACCOUNTS_FILE": path, "DATABASE_URL": pg_url}
        return BotHarness(
            slack=fake_slack, sandbox=accounts_sandbox, db_path=tmp_path / f"{name}.sqlite", env=env
        ).start()

    old = start(ACCOUNTS, "old")
    new = start(narrowed("prod", ["CPROD2"]), "new")
    try:
        case = open_case_in(old, "prod", subject="Payments database down")
        link = old.services.cases.post_card(case, "CPROD", linked_by="U1")  # the old file lets CPROD use prod
        old.stop()  # the deploy ends

        accounts_sandbox.accounts.account(ALIAS_OF["prod"]).add_aws_reply(case.case_id, "root cause: the disk")
        new.services.sync.run_cycle()
        shown = [shown_text(m) for m in communication_messages(new, "CPROD", link.thread_ts)]
        assert shown == [], f"prod's communication was posted in CPROD: {shown}"
    finally:
        new.stop()
        old.stop()


def test_a_card_interrupted_before_the_restart_is_not_posted_in_a_channel_taken_off_its_account(
    fake_slack, accounts_sandbox, tmp_path
):
    """The unlinking runs in build_services; the journal's interrupted work resumes after it
    (Services.recover), and a card job links its case wherever it was asked: post_step checks no channel."""
    import contextlib
    import threading

    first = start_with_accounts(fake_slack, accounts_sandbox, tmp_path, ACCOUNTS, "before")
    try:
        case = open_case_in(first, "prod", subject="Payments database down")
        fake_slack.fail("chat.postMessage", "internal_error", status=500, count=None)  # Slack down a while

        def post() -> None:
            with contextlib.suppress(Exception):  # the bot is stopped under it: the job is what matters
                first.services.cases.post_card(case, "CPROD", linked_by="U1")

        posting = threading.Thread(target=post, daemon=True)
        posting.start()
        time.sleep(1.5)  # the card's job retries; then the bot is stopped (a deploy)
    finally:
        first.stop()
    fake_slack.heal()
    second = start_with_accounts(fake_slack, accounts_sandbox, tmp_path, narrowed("prod", ["CPROD2"]), "after")
    try:
        second.services.recover()
        assert second.services.work.wait_idle(timeout=30)
        link = second.services.cases.link_in(case.case_id, "CPROD")
        assert link is None, f"linked in CPROD after the unlinking: {link}"
    finally:
        second.stop()


def test_a_thread_reply_noted_before_the_restart_does_not_reach_the_case_after_it(
    fake_slack, accounts_sandbox, tmp_path
):
    """The reply was written while CPROD could use prod; AWS refused it for a while, the bot restarted
    with CPROD taken off prod, and the journal sent it to prod's case all the same. Now its writer is
    told, alone, that it was not sent, and why."""
    first = start_with_accounts(fake_slack, accounts_sandbox, tmp_path, ACCOUNTS, "before")
    prod = accounts_sandbox.accounts.account(ALIAS_OF["prod"])
    try:
        case = open_case_in(first, "prod", subject="Payments database down")
        link = first.services.cases.post_card(case, "CPROD", linked_by="U1")
        fake_slack.add_user("U7", real_name="Contractor", display_name="contractor")
        prod.inject_fault("AddCommunicationToCase", "ThrottlingException", count=1000)
        written = first.user_message("CPROD", "written before the change", user="U7", thread_ts=link.thread_ts)
        key = f"reply:CPROD:{written.event['ts']}"
        deadline = time.monotonic() + 20
        while (entry := first.services.cases.journal.get(key)) is None or entry.progress.get("trying") != 0:
            assert time.monotonic() < deadline, "the reply was never tried"
            time.sleep(0.05)
    finally:
        work = first.services.work
        first.stop()
    # A call already under way when the bot stopped ends first (botocore's own retries): were AWS
    # healed before, the stopped bot's last try would send it, under the old accounts file.
    assert work.wait_idle(timeout=30)
    prod.clear_faults()
    second = start_with_accounts(fake_slack, accounts_sandbox, tmp_path, narrowed("prod", ["CPROD2"]), "after")
    try:
        second.services.recover()
        assert second.services.work.wait_idle(timeout=30)
        bodies = [c.body for c in second.services.gateways["prod"].communications(case.case_id)]
        assert not any("written before the change" in b for b in bodies), "sent from a channel prod may not use"
        # Review32, 33: said in the thread, where it lasts (the refusal may come hours after the message,
        # to someone no longer looking), naming nothing of the account the channel may no longer use.
        [told] = fake_slack.calls("chat.postMessage", lambda c: c.params.get("thread_ts") == link.thread_ts)
        assert "<@U7>" in told.params["text"] and "not* sent" in told.params["text"]
        assert "may no longer use the case's account" in told.params["text"]
        assert "prod" not in told.params["text"] and case.case_id.split("-")[1] not in told.params["text"]
    finally:
        second.stop()
