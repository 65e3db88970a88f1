"""`/aws-support search` across accounts, end to end: matching, newest first, pages of 5 with Next,
"Link here", status and date filters, channel rules, an unreachable account named, usage answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tests.accounts.e2e import ALIAS_OF, open_case_in
from tests.cases.helpers import card_text
from tests.support.blocks import texts_in


def sandbox_of(bot, alias):
    return bot.sandbox.accounts.account(ALIAS_OF[alias])


def backdate(bot, alias, case, days):
    when = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    sandbox_of(bot, alias).edit_case(case.case_id, time_created=when)


def search(bot, words, channel="C1", user="U1"):
    ack = bot.command(f"search {words}", channel=channel, user=user)
    assert ack.status == 200
    return bot.wait_for_response()


def shown(answer):
    return "\n".join(texts_in(answer.get("blocks") or [])) or answer.get("text", "")


def buttons(answer, action_id):
    return [
        element
        for block in answer.get("blocks") or []
        for element in ([block["accessory"]] if "accessory" in block else block.get("elements", []))
        if element.get("action_id") == action_id
    ]


def test_search_matches_every_word_across_the_channels_accounts_newest_first(accounts_bot):
    older = open_case_in(accounts_bot, "main", subject="Disk full on db-1")
    newer = open_case_in(accounts_bot, "stage", subject="DISK full on db-2")
    open_case_in(accounts_bot, "prod", subject="Disk full on prod db")  # prod is CPROD's only
    open_case_in(accounts_bot, "main", subject="Network is slow")
    backdate(accounts_bot, "main", older, 30)
    answer = search(accounts_bot, "disk FULL")
    text = shown(answer)
    assert "2 cases" in text
    assert text.index("DISK full on db-2") < text.index("Disk full on db-1")
    assert "prod db" not in text and "Network" not in text
    assert "stage (200000000003)" in text and "main (123456789012)" in text
    assert [b["value"] for b in buttons(answer, "search_link")] == [newer.case_id, older.case_id]
    assert answer["response_type"] == "ephemeral"
    # The display ID and the service's name match too.
    assert "Network is slow" not in shown(search(accounts_bot, newer.display_id))
    assert "DISK full on db-2" in shown(search(accounts_bot, newer.display_id))
    assert "4 cases" in shown(search(accounts_bot, "elastic compute", channel="CPROD"))


def test_five_a_page_and_next_is_only_for_who_asked(accounts_bot):
    for i in range(7):
        open_case_in(accounts_bot, "main" if i % 2 else "stage", subject=f"Queue stuck {i}")
    first = search(accounts_bot, "queue")
    assert len(buttons(first, "search_link")) == 5 and "page 1 of 2" in shown(first)
    assert "Queue stuck 6" in shown(first) and "Queue stuck 1" not in shown(first)
    [next_button] = buttons(first, "search_next")
    message = {"type": "message", "ts": "1700000000.000100", "text": "", "blocks": first["blocks"]}
    other = accounts_bot.requests.block_actions(next_button, message=message, user_id="U2")
    refusal = accounts_bot.wait_for_response(response_url=other.response_url)
    assert "someone else" in refusal["text"]
    click = accounts_bot.requests.block_actions(next_button, message=message)
    second = accounts_bot.wait_for_response(response_url=click.response_url)
    assert second["replace_original"] is True
    assert "page 2 of 2" in shown(second) and "Queue stuck 0" in shown(second) and "Queue stuck 6" not in shown(second)
    assert len(buttons(second, "search_link")) == 2 and not buttons(second, "search_next")


def test_link_here_links_the_case_with_the_usual_checks(accounts_bot):
    case = open_case_in(accounts_bot, "stage", subject="Lambda timeouts")
    prod = open_case_in(accounts_bot, "prod", subject="Lambda timeouts in prod")
    answer = search(accounts_bot, "lambda")
    [link] = buttons(answer, "search_link")
    message = {"type": "message", "ts": "1700000000.000200", "text": "", "blocks": answer["blocks"]}
    click = accounts_bot.requests.block_actions(link, message=message)
    assert "linked" in accounts_bot.wait_for_response(response_url=click.response_url)["text"]
    [post] = accounts_bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None)
    assert "Lambda timeouts" in card_text(accounts_bot.slack.message("C1", post.response["ts"]))
    assert accounts_bot.services.cases.case_for_thread("C1", post.response["ts"]) == case.case_id
    # A forged button naming a case of an account C1 may not use is refused by name.
    forged = accounts_bot.requests.block_actions({**link, "value": prod.case_id}, message=message)
    refusal = accounts_bot.wait_for_response(response_url=forged.response_url)
    assert "may not be used" in refusal["text"] and "prod" in refusal["text"]


def test_status_and_since_filters(accounts_bot):
    done = open_case_in(accounts_bot, "main", subject="Billing question resolved")
    accounts_bot.services.gateways["main"].resolve_case(done.case_id)
    open_case_in(accounts_bot, "stage", subject="Billing question open")
    old = open_case_in(accounts_bot, "stage", subject="Billing question old")
    ancient = open_case_in(accounts_bot, "main", subject="Billing question ancient")
    backdate(accounts_bot, "stage", old, 90)
    backdate(accounts_bot, "main", ancient, 400)  # older than AWS keeps: never asked for
    text = shown(search(accounts_bot, "billing"))
    assert "3 cases" in text and "ancient" not in text
    text = shown(search(accounts_bot, "billing status:open"))
    assert "2 cases" in text and "Billing question resolved" not in text
    text = shown(search(accounts_bot, "billing status:resolved"))
    assert "1 case" in text and "Billing question resolved" in text
    since = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    text = shown(search(accounts_bot, f"billing since:{since}"))
    assert "2 cases" in text and "Billing question old" not in text


def test_an_account_filter_obeys_the_channel_rules(accounts_bot):
    open_case_in(accounts_bot, "prod", subject="Prod database slow")
    open_case_in(accounts_bot, "main", subject="Main database slow")
    refused = search(accounts_bot, "database account:prod", channel="C1")
    assert "may not be used" in refused["text"] and "prod" in refused["text"]
    text = shown(search(accounts_bot, "database account:prod", channel="CPROD"))
    assert "1 case" in text and "Prod database slow" in text and "Main" not in text
    assert "2 cases" in shown(search(accounts_bot, "database account:all", channel="CPROD"))
    unknown = search(accounts_bot, "database account:nope")
    assert "no account" in unknown["text"].lower()


def test_an_account_whose_role_is_denied_is_named_and_the_others_answer(accounts_bot_factory, accounts_sandbox):
    first = accounts_bot_factory()
    open_case_in(first, "prod", subject="Cache evictions prod")
    open_case_in(first, "main", subject="Cache evictions main")
    accounts_sandbox.accounts.deny_assume_role("sandbox-2")
    bot = accounts_bot_factory()  # a fresh bot: the denied role is met on first use
    answer = search(bot, "cache", channel="CPROD")
    text = shown(answer)
    assert "Cache evictions main" in text and "Cache evictions prod" not in text
    assert "Not searched" in text and "prod" in text and "200000000002" in text


def test_bad_searches_get_a_usage_answer(accounts_bot):
    for words, expected in (
        ("", "Search for what?"),
        ("disk status:maybe", "status:maybe"),
        ("disk since:yesterday", "YYYY-MM-DD"),
        ("disk since:2999-01-01", "future"),
        ("disk account:", "account alias"),
    ):
        answer = search(accounts_bot, words)
        assert expected in answer["text"], words
        assert "Usage: `/aws-support search" in answer["text"]


def test_search_with_one_account(bot):
    from tests.cases.helpers import open_case_at_aws

    case = open_case_at_aws(bot, subject="Only account case")
    answer = search(bot, "only account")
    assert "1 case" in shown(answer) and "Only account case" in shown(answer)
    assert [b["value"] for b in buttons(answer, "search_link")] == [case.case_id]
    assert json.dumps(answer)  # plain JSON, nothing left unrendered


def click_next(bot, answer, user="U1", channel="C1"):
    [next_button] = buttons(answer, "search_next")
    assert len(next_button["value"]) <= 2000  # Slack's limit for a button's value
    message = {"type": "message", "ts": "1700000000.000300", "text": "", "blocks": answer["blocks"]}
    click = bot.requests.block_actions(next_button, message=message, user_id=user, channel_id=channel)
    return bot.wait_for_response(response_url=click.response_url)


def test_next_asks_aws_nothing_and_its_pages_stay_stable_when_a_case_arrives(accounts_bot):
    for i in range(7):
        open_case_in(accounts_bot, "main" if i % 2 else "stage", subject=f"Queue stuck {i}")
    first = search(accounts_bot, "queue")
    assert "Queue stuck 2" in shown(first)
    open_case_in(accounts_bot, "stage", subject="Queue stuck newest")  # would shift every page by one
    for alias in ALIAS_OF:
        sandbox_of(accounts_bot, alias).reset_calls()
    second = click_next(accounts_bot, first)
    text = shown(second)
    assert "page 2 of 2" in text and "Queue stuck 1" in text and "Queue stuck 0" in text
    assert "Queue stuck 2" not in text and "newest" not in text  # no duplicate, no gap
    assert sum(sum(sandbox_of(accounts_bot, alias).calls.values()) for alias in ALIAS_OF) == 0


def start_with_accounts(fake_slack, accounts_sandbox, tmp_path, accounts, name, *, workers=False):
    """A bot on `accounts` (written to <name>.toml) and the one state file every start here shares."""
    from tests.support.harness import BotHarness, write_accounts_file

    path = write_accounts_file(tmp_path / f"{name}.toml", accounts)
    env = {"BOT_ACCOUNTS_FILE": path}
    return BotHarness(
        slack=fake_slack, sandbox=accounts_sandbox, db_path=tmp_path / "kept.sqlite", env=env, workers=workers
    ).start()


def two_pages_found_before_a_restart(fake_slack, accounts_sandbox, tmp_path):
    """A search over eight cases of main and stage, answered by a bot that is then stopped."""
    from tests.accounts.e2e import ACCOUNTS

    first = start_with_accounts(fake_slack, accounts_sandbox, tmp_path, ACCOUNTS, "before")
    try:
        for i in range(8):
            open_case_in(first, "main" if i % 2 else "stage", subject=f"Queue stuck {i}")
        answer = search(first, "queue")
        assert "page 1 of 2" in shown(answer)
    finally:
        first.stop()
    return answer


def test_next_shows_only_what_the_channel_may_use_when_clicked(fake_slack, accounts_sandbox, tmp_path):
    from tests.accounts.e2e import ACCOUNTS

    answer = two_pages_found_before_a_restart(fake_slack, accounts_sandbox, tmp_path)
    # The accounts file now keeps stage to CPROD: the next page in C1 shows none of stage's cases.
    restricted = [a if a["alias"] != "stage" else {**a, "channels": ["CPROD"]} for a in ACCOUNTS]
    second = start_with_accounts(fake_slack, accounts_sandbox, tmp_path, restricted, "after")
    try:
        text = shown(click_next(second, answer))
        assert "Queue stuck 1" in text and "stage" not in text
        assert "Queue stuck 0" not in text and "Queue stuck 2" not in text
    finally:
        second.stop()


def test_next_after_the_search_expired_says_to_search_again(accounts_bot):
    for i in range(6):
        open_case_in(accounts_bot, "main", subject=f"Queue stuck {i}")
    first = search(accounts_bot, "queue")
    table = accounts_bot.services.store.table("searches")
    for key, record in list(table.items()):
        table.put(key, {**record, "at": record["at"] - 3600})
    answer = click_next(accounts_bot, first)
    assert "expired" in answer["text"] and "/aws-support search" in answer["text"]


def test_a_found_case_shows_its_service_and_category_by_name_as_the_card_does(accounts_bot):
    case = open_case_in(accounts_bot, "main", subject="Named service")
    service, category = accounts_bot.services.cases.service_names(case.service_code, case.category_code)
    assert (service, category) != (case.service_code, case.category_code)
    text = shown(search(accounts_bot, "named service"))
    assert f"{service} / {category}" in text
    assert case.service_code not in text


def test_a_display_id_found_in_none_of_the_channels_accounts_says_which_were_asked(accounts_bot):
    case = open_case_in(accounts_bot, "prod", subject="Only prod's")  # prod may be used in CPROD only
    accounts_bot.command(f"show {case.display_id}", channel="C1")
    text = accounts_bot.wait_for_response(timeout=15)["text"]
    assert "this account" not in text
    assert "main" in text and "stage" in text and "prod" not in text.split("(")[1].split(")")[0]
