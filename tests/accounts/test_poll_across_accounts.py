"""The poller across accounts: each account's replies reach their threads, ceil(N/100) calls per account,
and one account that cannot be used is reported and never keeps the others' replies back."""

from __future__ import annotations

from tests.accounts.e2e import open_case_in


def link_in(bot, alias, channel, subject):
    case = open_case_in(bot, alias, subject=subject)
    bot.command(f"link {alias}:{case.display_id}", channel=channel)
    assert "linked" in bot.wait_for_response()["text"]
    [post] = bot.slack.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("channel") == channel and subject in str(c.params.get("blocks")),
    )
    return case, post.response["ts"]


def thread_texts(bot, channel, ts):
    return [str(m.get("text", "")) + str(m.get("blocks", "")) for m in bot.slack.messages(channel, thread_ts=ts)]


def test_replies_from_every_account_reach_their_threads(accounts_bot):
    sandbox = accounts_bot.sandbox.accounts
    main, main_ts = link_in(accounts_bot, "main", "C1", "Main case")
    prod, prod_ts = link_in(accounts_bot, "prod", "CPROD", "Prod case")
    stage, stage_ts = link_in(accounts_bot, "stage", "C1", "Stage case")
    accounts_bot.services.sync.run_cycle()  # the first look sets each thread's watermark
    sandbox.account("sandbox").add_aws_reply(main.case_id, "answer in main")
    sandbox.account("sandbox-2").add_aws_reply(prod.case_id, "answer in prod")
    sandbox.account("sandbox-3").add_aws_reply(stage.case_id, "answer in stage")
    for alias in ("sandbox", "sandbox-2", "sandbox-3"):
        sandbox.account(alias).reset_calls()

    report = accounts_bot.services.sync.run_cycle()

    assert report.checked == 3 and not report.failed_accounts
    # One DescribeCases per account (one case each: ceil(1/100)).
    assert [sandbox.account(a).calls["DescribeCases"] for a in ("sandbox", "sandbox-2", "sandbox-3")] == [1, 1, 1]
    assert any("answer in main" in t for t in thread_texts(accounts_bot, "C1", main_ts))
    assert any("answer in prod" in t for t in thread_texts(accounts_bot, "CPROD", prod_ts))
    assert any("answer in stage" in t for t in thread_texts(accounts_bot, "C1", stage_ts))
    assert not any("answer in prod" in t for t in thread_texts(accounts_bot, "C1", main_ts))


def test_an_account_that_fails_is_reported_once_and_the_others_are_polled(accounts_bot, caplog):
    sandbox = accounts_bot.sandbox.accounts
    main, main_ts = link_in(accounts_bot, "main", "C1", "Main case")
    stage, stage_ts = link_in(accounts_bot, "stage", "C1", "Stage case")
    accounts_bot.services.sync.run_cycle()
    sandbox.account("sandbox-3").inject_fault("DescribeCases", "SubscriptionRequiredException", count=100)
    sandbox.account("sandbox").add_aws_reply(main.case_id, "main keeps flowing")

    first = accounts_bot.services.sync.run_cycle()
    second = accounts_bot.services.sync.run_cycle()

    assert first.failed_accounts == {"stage": "SubscriptionRequiredException"}
    assert second.failed_accounts == {"stage": "SubscriptionRequiredException"}
    assert any("main keeps flowing" in t for t in thread_texts(accounts_bot, "C1", main_ts))
    logged = [r for r in caplog.records if "stage" in r.getMessage() and "not polled" in r.getMessage()]
    assert len(logged) == 1  # reported once, not every cycle
    health = accounts_bot.health().json
    assert health["accounts"]["stage"]["problem"] == "SubscriptionRequiredException"
    accounts_bot.command("accounts", channel="C1")
    assert "no Business or Enterprise support plan" in accounts_bot.wait_for_response()["text"]

    sandbox.account("sandbox-3").clear_faults()
    sandbox.account("sandbox-3").add_aws_reply(stage.case_id, "stage is back")
    assert accounts_bot.services.sync.run_cycle().failed_accounts == {}
    assert any("stage is back" in t for t in thread_texts(accounts_bot, "C1", stage_ts))
