"""Review 43, F2: a bot killed (kill -9, OOM, a node lost) while AddCommunicationToCase is on its way
leaves the record with trying=0 and unclear_at=None (the save before the call clears it). With one
process per SQLite file, the next start takes the record at once (Journal sole_owner): it looks at AWS
within a second or two, finds nothing while AWS is still at work on the first call, and sends the
reply again. A call cut short by a crash is the most unclear failure there is, yet the minute of
bot/cases/unclear.py never applies to it."""

from __future__ import annotations

import time

import pytest

from bot.bootstrap import sandbox_gateway
from bot.sandbox.faults import CONNECTION_DROPPED
from tests.cases.helpers import link_case, open_case_at_aws
from tests.support.http import request
from tests.support.slack_requests import SlackRequests
from tests.sync.test_crash import kill, start_bot, wait_until


@pytest.mark.slow(seconds=20)
def test_kill_9_while_aws_is_still_at_work_on_a_reply_sends_it_once(bot_factory, fake_slack, sandbox):
    setup = bot_factory()
    setup.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    case = open_case_at_aws(setup)
    card = link_case(setup, case)
    db_path = setup.db_path
    setup.stop()
    gateway = sandbox_gateway(sandbox.url)

    def texts() -> list[str]:
        return [c.body.split(": ", 1)[1] for c in gateway.communications(case.case_id) if " via Slack" in c.body]

    def ready(url: str) -> bool:
        try:
            return request("GET", url + "/healthz").status == 200
        except OSError:
            return False

    process, url = start_bot(db_path, fake_slack, sandbox)
    wait_until(lambda: ready(url), what="the bot")
    # AWS slow: the call is on its way for 0.3 s, then its connection drops and AWS takes it 6 s later.
    sandbox.set_latency(0.3)
    sandbox.inject_fault("AddCommunicationToCase", CONNECTION_DROPPED, late_seconds=6.0)
    before = sandbox.calls["AddCommunicationToCase"]
    event = fake_slack.add_message("C1", "once, please", user="U1", thread_ts=card["ts"])
    assert SlackRequests(url, "test-secret").event_callback(event).status == 200
    wait_until(lambda: sandbox.calls["AddCommunicationToCase"] > before, what="the reply's call")
    kill(process)  # during the call: the bot never hears how it ended
    sandbox.set_latency(0)
    process, url = start_bot(db_path, fake_slack, sandbox)
    try:
        wait_until(
            lambda: any(
                c.status == 200
                for c in fake_slack.calls("reactions.add", lambda c: c.params["timestamp"] == event["ts"])
            ),
            timeout=150,  # with the fix: AWS's minute, then a backoff of up to 30 s
            what="the ✅",
        )
        time.sleep(7.0)  # the first call's late work has surely landed
    finally:
        kill(process)
    assert texts() == ["once, please"]
