"""Review 44, F5: records written before 8d1b341 (at c74e20e the save before the call was
`trying=index, unclear_at=None`; before that, no unclear_at at all) carry no doubt for a call a crash
cut short. The bot that resumes them after the upgrade looks at AWS at once, finds nothing while AWS is
still at work on the killed bot's call, and sends the reply again -- and, should it fail, says "*not*
sent". New rows always write "unclear" with the save before the call (calling()); its absence beside a
`trying` (or `creating`) says the row is older and its last call's outcome unknown."""

from __future__ import annotations

import threading
import time

from bot.work import Job
from tests.cases.helpers import link_case, open_case_at_aws, sent_texts


def test_a_reply_row_from_before_the_upgrade_cut_short_during_its_call_is_sent_once(bot):
    bot.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    case = open_case_at_aws(bot)
    card = link_case(bot, case)
    replies, journal = bot.services.cases.replies, bot.services.cases.journal
    event = bot.slack.add_message("C1", "noted by the old bot", user="U1", thread_ts=card["ts"])
    lease = replies.note_thread_reply(
        channel="C1", thread_ts=card["ts"], message_ts=event["ts"], user="U1", text=event["text"], files=[]
    )
    job = Job(journal, lease, journal.get(lease.key))
    job.save(case_id=case.case_id)
    bodies = replies._bodies(job)
    # What the last release on main (2914712) wrote just before AddCommunicationToCase (c74e20e, which
    # wrote unclear_at=None there, never reached main) ...
    job.save(trying=0)
    # ... whose call was under way when that bot was killed: AWS takes it 0.5 s from now.
    late = threading.Timer(0.5, replies.gateway.add_communication, (case.case_id, bodies[0]))
    late.start()
    journal.release(lease)  # the upgraded bot finds the record nobody holds
    assert bot.services.cases.runner.resume() == 1
    bot.slack.wait_for("reactions.add", lambda c: c.params["timestamp"] == event["ts"], timeout=20)
    late.join()
    time.sleep(0.5)
    assert sent_texts(bot, case.case_id) == ["noted by the old bot"]
