"""Pure text rules of the case lifecycle: splitting long replies, Slack markup to plain text, ignore rules."""

from bot.cases.service import MAX_BODY, outbound_key, plain_text_from_slack, split_body
from bot.listeners.events import is_case_reply


def test_short_reply_is_one_attributed_body():
    assert split_body("Ana via Slack: ", "hello") == ["Ana via Slack: hello"]


def test_long_reply_is_split_in_order_within_the_limit_and_loses_nothing():
    words = [f"word{i}" for i in range(4000)]
    text = " ".join(words)
    bodies = split_body("Ana via Slack: ", text)
    assert len(bodies) > 2
    assert all(len(body) <= MAX_BODY for body in bodies)
    assert all(body.startswith("Ana via Slack: (") for body in bodies)
    rejoined = " ".join(body.split(") ", 1)[1] for body in bodies)
    assert rejoined.split() == words


def test_reply_without_spaces_is_cut_hard_but_complete():
    text = "x" * 20000
    bodies = split_body("A via Slack: ", text)
    assert "".join(body.split(") ", 1)[1] for body in bodies) == text


def test_slack_markup_becomes_plain_text():
    names = {"U1": "Ana"}
    text = "hi <@U1>, see <https://example.com|the doc> and <#C1|ops> &amp; <https://x.io> &lt;3 <!here>"
    assert plain_text_from_slack(text, names.get) == (
        "hi @Ana, see the doc (https://example.com) and #ops & https://x.io <3 @here"
    )


def test_outbound_key_ignores_surrounding_whitespace_only():
    assert outbound_key("case-1", "body\n") == outbound_key("case-1", "body")
    assert outbound_key("case-1", "body") != outbound_key("case-2", "body")


def _event(**overrides):
    event = {"type": "message", "channel": "C1", "user": "U1", "text": "hi", "ts": "2.0", "thread_ts": "1.0"}
    event.update(overrides)
    return event


def test_only_a_person_writing_in_a_thread_counts_as_a_case_reply():
    assert is_case_reply(_event())
    assert is_case_reply(_event(subtype="file_share"))
    assert is_case_reply(_event(subtype="thread_broadcast"))
    assert not is_case_reply(_event(thread_ts=None))  # top-level message
    assert not is_case_reply(_event(ts="1.0"))  # the thread's parent
    assert not is_case_reply(_event(bot_id="B1"))
    assert not is_case_reply(_event(subtype="bot_message"))
    assert not is_case_reply(_event(subtype="message_changed"))
    assert not is_case_reply(_event(subtype="message_deleted"))
    assert not is_case_reply(_event(subtype="channel_join"))
    assert not is_case_reply(_event(text="// internal note"))
    assert not is_case_reply(_event(text="  //also internal"))
