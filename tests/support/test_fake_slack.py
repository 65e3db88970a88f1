"""The fake Slack Web API behaves as the real one does where the bot depends on it."""

from __future__ import annotations

import threading
import time

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from tests.support.fake_slack import BOT_TOKEN, FakeSlack
from tests.support.http import request


@pytest.fixture
def client(fake_slack: FakeSlack) -> WebClient:
    web = WebClient(token=BOT_TOKEN, base_url=fake_slack.api_url, timeout=10)
    web.retry_handlers.extend(
        [RateLimitErrorRetryHandler(max_retry_count=2), ServerErrorRetryHandler(max_retry_count=2)]
    )
    return web


def _card(client: WebClient, **kwargs) -> str:
    return client.chat_postMessage(
        channel="C1",
        text="card",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*case*"}}],
        metadata={"event_type": "case_card", "event_payload": {"case_id": "case-1"}},
        **kwargs,
    )["ts"]


def test_every_call_is_recorded_with_params_and_headers(fake_slack: FakeSlack, client: WebClient) -> None:
    ts = _card(client)
    client.reactions_add(channel="C1", timestamp=ts, name="eyes")  # form-encoded

    [post] = fake_slack.calls("chat.postMessage")
    assert post.params["blocks"][0]["type"] == "section"
    assert post.params["metadata"]["event_payload"] == {"case_id": "case-1"}
    assert post.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    assert post.response["ts"] == ts
    [reaction] = fake_slack.wait_for("reactions.add", lambda c: c.params["name"] == "eyes")
    assert reaction.params == {"channel": "C1", "timestamp": ts, "name": "eyes"}


def test_timestamps_are_unique_and_increasing(client: WebClient) -> None:
    stamps = [client.chat_postMessage(channel="C1", text=str(n))["ts"] for n in range(20)]

    assert len(set(stamps)) == 20
    assert stamps == sorted(stamps, key=float)


def test_threads_return_metadata_only_when_asked(fake_slack: FakeSlack, client: WebClient) -> None:
    ts = _card(client)
    client.chat_postMessage(
        channel="C1", thread_ts=ts, text="from AWS", metadata={"event_type": "aws", "event_payload": {"id": "1"}}
    )
    person = fake_slack.add_message("C1", "from a person", user="U1", thread_ts=ts)

    plain = client.conversations_replies(channel="C1", ts=ts)["messages"]
    full = client.conversations_replies(channel="C1", ts=ts, include_all_metadata=True)["messages"]

    assert [m["text"] for m in plain] == ["card", "from AWS", "from a person"]
    assert not any("metadata" in m for m in plain)
    assert full[0]["metadata"]["event_payload"] == {"case_id": "case-1"}
    assert full[1]["metadata"]["event_payload"] == {"id": "1"}
    assert full[0]["reply_count"] == 2
    assert person["thread_ts"] == ts and person["channel"] == "C1"

    history = client.conversations_history(channel="C1", include_all_metadata=True)["messages"]
    assert [m["text"] for m in history] == ["card"]
    assert history[0]["metadata"]["event_type"] == "case_card"


def test_history_pages_newest_first(client: WebClient) -> None:
    for n in range(5):
        client.chat_postMessage(channel="C2", text=str(n))

    first = client.conversations_history(channel="C2", limit=3)
    second = client.conversations_history(channel="C2", limit=3, cursor=first["response_metadata"]["next_cursor"])

    assert [m["text"] for m in first["messages"]] == ["4", "3", "2"]
    assert first["has_more"] is True
    assert [m["text"] for m in second["messages"]] == ["1", "0"]
    assert second["has_more"] is False


def test_slack_errors_the_bot_must_handle(fake_slack: FakeSlack, client: WebClient) -> None:
    ts = _card(client)
    client.reactions_add(channel="C1", timestamp=ts, name="white_check_mark")

    def error_of(call) -> str:
        with pytest.raises(SlackApiError) as caught:
            call()
        return caught.value.response["error"]

    assert error_of(lambda: client.reactions_add(channel="C1", timestamp=ts, name="white_check_mark")) == (
        "already_reacted"
    )
    assert error_of(lambda: client.reactions_remove(channel="C1", timestamp=ts, name="x")) == "no_reaction"
    assert error_of(lambda: client.chat_update(channel="C1", ts="1.000001", text="x")) == "message_not_found"
    assert error_of(lambda: client.conversations_replies(channel="C1", ts="1.000001")) == "thread_not_found"
    assert error_of(lambda: client.api_call("no.suchMethod")) == "unknown_method"
    assert error_of(lambda: WebClient(token="xoxb-other", base_url=fake_slack.api_url).auth_test()) == "invalid_auth"
    header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    assert error_of(lambda: client.chat_postMessage(channel="C1", text="t", blocks=[header])) == "invalid_blocks"
    assert error_of(lambda: client.chat_postMessage(channel="C1", text="t", metadata={"x": 1})) == (
        "invalid_metadata_format"
    )
    assert fake_slack.calls("no.suchMethod")
    # The refusals above are this test's point; the fixture checks that the bot never draws one.
    assert [kind for kind, _ in fake_slack.invalid_payloads] == ["message"]
    fake_slack.invalid_payloads.clear()


def test_faults_rate_limit_then_recover(fake_slack: FakeSlack, client: WebClient) -> None:
    ts = _card(client)
    fake_slack.fail("chat.update", retry_after=0)
    fake_slack.fail("chat.delete", status=503)
    fake_slack.fail("users.info", error="user_not_found")

    client.chat_update(channel="C1", ts=ts, text="updated")
    client.chat_delete(channel="C1", ts=ts)
    with pytest.raises(SlackApiError):
        client.users_info(user="U1")

    assert [c.status for c in fake_slack.calls("chat.update")] == [429, 200]
    assert fake_slack.calls("chat.update")[0].response == {"ok": False, "error": "ratelimited"}
    assert [c.status for c in fake_slack.calls("chat.delete")] == [503, 200]
    assert client.users_info(user="U1")["user"]["profile"]["real_name"]


def test_wait_for_wakes_up_when_the_call_arrives(fake_slack: FakeSlack, client: WebClient) -> None:
    later = threading.Timer(0.2, lambda: client.chat_postMessage(channel="C9", text="late"))
    later.start()

    [call] = fake_slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "C9", timeout=5)

    assert call.params["text"] == "late"
    with pytest.raises(AssertionError, match="waited 0.2s"):
        fake_slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "C0", timeout=0.2)


def test_views_have_ids_and_hashes(fake_slack: FakeSlack, client: WebClient) -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "Hello"}}
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Create case"}, "blocks": [section]}

    opened = client.views_open(trigger_id="1.2.abc", view=modal)["view"]
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal)["view"]

    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    with pytest.raises(SlackApiError, match="hash_conflict"):
        client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal)
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        client.views_open(trigger_id="1.2.abc", view=dict(modal, title={"type": "plain_text", "text": "t" * 25}))
    assert fake_slack.view(opened["id"])["title"]["text"] == "Create case"
    fake_slack.invalid_payloads.clear()  # the too-long title was refused on purpose


def test_slack_sdk_models_and_slack_rules_refuse_what_slack_refuses(fake_slack: FakeSlack, client: WebClient) -> None:
    empty_header = {"type": "header", "text": {"type": "plain_text", "text": ""}}
    long_value = {"text": {"type": "plain_text", "text": "x"}, "value": "v" * 151}
    select = {"type": "static_select", "action_id": "s", "options": [long_value]}
    too_many = dict(select, options=[dict(long_value, value=str(i)) for i in range(101)])
    for blocks in (
        [empty_header],
        [{"type": "actions", "elements": [select]}],
        [{"type": "actions", "elements": [too_many]}],
    ):
        with pytest.raises(SlackApiError, match="invalid_blocks"):
            client.chat_postMessage(channel="C1", text="t", blocks=blocks)
    assert len(fake_slack.invalid_payloads) == 3
    fake_slack.invalid_payloads.clear()


def test_files_upload_v2_and_private_downloads(fake_slack: FakeSlack, client: WebClient) -> None:
    ts = _card(client)

    uploaded = client.files_upload_v2(channel="C1", thread_ts=ts, content=b"report", filename="r.txt", title="R")

    file_id = uploaded["file"]["id"]
    assert fake_slack.file_bytes(file_id) == b"report"
    assert fake_slack.messages("C1", ts)[-1]["files"][0]["id"] == file_id
    assert fake_slack.calls("file_upload")[0].body == b"report"

    shared = fake_slack.add_file("log.txt", b"LOG", "text/plain")
    with_token = request("GET", shared["url_private_download"], headers={"Authorization": f"Bearer {BOT_TOKEN}"})
    without = request("GET", shared["url_private_download"])
    assert (with_token.status, with_token.text) == (200, "LOG")
    assert without.status == 200 and "Sign in" in without.text  # Slack's quirk: a login page, not a 401
    downloads = fake_slack.calls("file_download")
    assert [c.authorization for c in downloads] == [f"Bearer {BOT_TOKEN}", None]
    assert client.files_info(file=shared["id"])["file"]["name"] == "log.txt"


def test_response_urls_record_json_and_take_five_posts(fake_slack: FakeSlack) -> None:
    url = fake_slack.response_url()
    webhook = WebhookClient(url)

    statuses = [webhook.send(text=f"answer {n}", response_type="ephemeral").status_code for n in range(6)]

    assert statuses == [200] * 5 + [404]
    assert fake_slack.responses(url)[0] == {"text": "answer 0", "response_type": "ephemeral"}
    assert fake_slack.responses(fake_slack.response_url()) == []


def test_latency_delays_answers(fake_slack: FakeSlack, client: WebClient) -> None:
    fake_slack.set_latency(0.3, "auth.test")
    started = time.monotonic()

    client.auth_test()

    assert time.monotonic() - started >= 0.3


def test_a_burst_of_answers_on_response_urls_is_served_without_a_reset(fake_slack: FakeSlack) -> None:
    """Answers 64 at a time, as the after-ack work of a burst of `show`s sends them: every one is
    taken (with socketserver's listen backlog of 5, connections were reset and answers lost)."""
    from concurrent.futures import ThreadPoolExecutor

    from bot.slack.client import webhook_client

    urls = [fake_slack.response_url() for _ in range(64 * 5)]
    summary = {
        "text": "a case summary",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 2900}}],
    }

    def answer(url: str) -> int | str:
        try:
            # The bot's poster: no resend after a reset (slack_sdk's default would hide one).
            return webhook_client(url, timeout=10).send_dict(summary).status_code
        except OSError as error:
            return repr(error)

    with ThreadPoolExecutor(max_workers=64) as pool:
        statuses = list(pool.map(answer, urls))
    assert [s for s in statuses if s != 200] == []
    assert len(fake_slack.calls("response_url")) == len(urls)
