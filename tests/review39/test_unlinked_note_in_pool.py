"""Review 39 of d8fc98d: the note for a message in the thread of an unlinked card now runs on
`services.work`, after Bolt's answer (the app runs listeners before it: process_before_response=True).

Before, a StoreError while looking at the thread reached `unexpected_in_listener` before the answer: a 503,
so Slack delivered the event again (and at its last try the writer heard their message was not kept).
Now the job is not wrapped in `guarded`, as every other after-ack listener job is: the error is caught by
OrderedWork's last-resort boundary (one "background job failed" traceback), Slack already has its 200,
and the writer never learns that their message reached no one."""

from __future__ import annotations

import time

from bot.store.errors import StoreError
from tests.cases.helpers import link_case, open_case_at_aws


def test_a_store_error_in_the_unlinked_note_is_not_lost_in_silence(bot, monkeypatch):
    case = open_case_at_aws(bot)
    card = link_case(bot, case, user="U1")
    bot.command(f"unlink {case.display_id}")
    assert "no longer synced" in bot.wait_for_response()["text"]

    records = bot.services.cases.replies.records
    real = records.unlinked_thread
    failures = [1]

    def unlinked_thread(channel, thread_ts):
        if failures[0]:
            failures[0] -= 1
            raise StoreError("the database is away for a moment")
        return real(channel, thread_ts)

    monkeypatch.setattr(records, "unlinked_thread", unlinked_thread)
    delivery = bot.user_message("C1", "anyone here?", user="U2", thread_ts=card["ts"])
    assert bot.services.work.wait_idle(timeout=20)
    time.sleep(0.5)
    told = bot.slack.calls(
        "chat.postEphemeral", lambda c: c.params.get("thread_ts") == card["ts"] and c.params.get("user") == "U2"
    )
    assert delivery.response.status != 200 or told, (
        "Slack got a 200 (no redelivery) and the writer was told nothing: their message reached no one in silence"
    )
