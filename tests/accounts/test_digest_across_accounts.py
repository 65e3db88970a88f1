"""Trusted Advisor across accounts, end to end: `digest <alias>` asks that account, `digest all` one
roll-up (per-account counts and savings, changes per channel and account, the top flagged checks
naming their account), an unreachable account named, refusals by channel, schedules with an account."""

from __future__ import annotations

from datetime import timedelta

from tests.accounts.e2e import ALIAS_OF
from tests.digest.test_e2e import blocks_by_id, click, digest_posts
from tests.support.blocks import texts_in
from tests.support.harness import ADMIN

IAM_USE = "zXCkfM1nI3"  # ok in the sandbox's catalogue


def sandbox_of(bot, alias):
    return bot.sandbox.accounts.account(ALIAS_OF[alias])


def digest(bot, words, channel="C1", count=1):
    bot.command(f"digest {words}".strip(), channel=channel)
    post = digest_posts(bot, channel, count=count)[count - 1]
    return bot.slack.message(channel, post.response["ts"])


def text_of(message):
    return "\n".join(texts_in(message["blocks"]))


def test_digest_of_a_named_account_asks_that_account(accounts_bot):
    for alias in ALIAS_OF:
        sandbox_of(accounts_bot, alias).reset_calls()
    message = digest(accounts_bot, "stage")
    assert "stage (200000000003)" in blocks_by_id(message["blocks"])["digest_meta"]["elements"][0]["text"]
    assert sandbox_of(accounts_bot, "stage").calls["DescribeTrustedAdvisorChecks"] == 1
    assert sandbox_of(accounts_bot, "main").calls["DescribeTrustedAdvisorChecks"] == 0


def test_accounts_the_channel_may_not_use_are_refused(accounts_bot):
    accounts_bot.command("digest prod", channel="C1")
    answer = accounts_bot.wait_for_response()["text"]
    assert "prod" in answer and "may not be used" in answer
    accounts_bot.command("digest nope", channel="C1")
    assert "no account" in accounts_bot.wait_for_response()["text"].lower()
    accounts_bot.command("digest schedule 0 9 * * * UTC prod", channel="C1", user=ADMIN)
    assert "may not be used" in accounts_bot.wait_for_response()["text"]
    assert accounts_bot.services.schedules.get("C1") is None
    assert sandbox_of(accounts_bot, "prod").calls["DescribeTrustedAdvisorChecks"] == 0


def test_digest_all_rolls_up_every_account_and_tracks_changes_per_account(accounts_bot):
    first = digest(accounts_bot, "all", channel="CPROD")
    text = text_of(first)
    assert "Trusted Advisor roll-up" in text and "3 AWS accounts" in text
    for label in ("main (123456789012)", "prod (200000000002)", "stage (200000000003)"):
        assert label in text
    top = blocks_by_id(first["blocks"])["digest_top"]["text"]["text"]
    assert "Top flagged checks across accounts" in top and "*main (123456789012)*" in top
    assert "$" in blocks_by_id(first["blocks"])["digest_totals"]["text"]["text"]
    # IAM Use turns red in stage only: the next roll-up here says so for stage, not for the others.
    sandbox_of(accounts_bot, "stage").set_trusted_advisor_check_status(IAM_USE, "error")
    second = digest(accounts_bot, "all", channel="CPROD", count=2)
    lines = {b["block_id"]: b["text"]["text"] for b in second["blocks"] if b["block_id"].startswith("digest_account")}
    [stage_line] = [line for line in lines.values() if line.startswith("*stage")]
    [main_line] = [line for line in lines.values() if line.startswith("*main")]
    assert "1 newly flagged" in stage_line and "0 newly flagged" in main_line
    # Tracked per channel and account: stage's own digest here now has nothing new to say of IAM Use.
    own = digest(accounts_bot, "stage", channel="CPROD", count=3)
    assert "IAM Use" not in str(blocks_by_id(own["blocks"]).get("digest_new", ""))


def test_roll_up_names_an_account_whose_role_is_denied(accounts_bot_factory, accounts_sandbox):
    accounts_sandbox.accounts.deny_assume_role("sandbox-2")
    bot = accounts_bot_factory()
    text = text_of(digest(bot, "all", channel="CPROD"))
    assert "prod (200000000002)" in text and "assuming its role was denied" in text
    assert "main (123456789012)" in text and "stage (200000000003)" in text


def test_a_schedule_with_an_account_posts_that_digest(accounts_bot):
    accounts_bot.command("digest schedule 0 9 * * * UTC all", channel="C1", user=ADMIN)
    answer = accounts_bot.wait_for_response()["text"]
    assert "roll-up of every account" in answer
    schedule = accounts_bot.services.schedules.get("C1")
    assert schedule.account == "all" and schedule.timezone == "UTC"
    accounts_bot.command("digest status", channel="C1")
    assert "roll-up" in accounts_bot.wait_for_response()["text"]
    slot = accounts_bot.services.schedules.next_run(schedule)
    accounts_bot.services.scheduler.run_due(now=slot + timedelta(seconds=5))
    [post] = digest_posts(accounts_bot, "C1")
    text = "\n".join(texts_in(post.params["blocks"]))
    assert "Trusted Advisor roll-up" in text and "prod" not in text  # C1 may not use prod
    accounts_bot.command("digest schedule 0 9 * * * stage", channel="C1", user=ADMIN)
    assert "account *stage*" in accounts_bot.wait_for_response()["text"]
    assert accounts_bot.services.schedules.get("C1").account == "stage"


def test_details_of_an_accounts_digest_come_from_that_account(accounts_bot):
    message = digest(accounts_bot, "stage")
    [button] = [
        b["accessory"] for b in message["blocks"] if b.get("accessory", {}).get("action_id") == "digest_details"
    ][:1]
    assert button["value"].startswith("stage|")
    for alias in ("main", "stage"):
        sandbox_of(accounts_bot, alias).reset_calls()
    click(accounts_bot, message, "digest_details", button["value"], block_id="digest_top_1")
    accounts_bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == message["ts"])
    assert sandbox_of(accounts_bot, "stage").calls["DescribeTrustedAdvisorCheckResult"] == 1
    assert sandbox_of(accounts_bot, "main").calls["DescribeTrustedAdvisorCheckResult"] == 0
