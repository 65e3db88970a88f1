"""Review 44, F4: Intake._create re-uploads the files when AWS says the saved attachment set expired
(a record resumed after more than an hour), then calls CreateCase again -- but saves only
attachment_set_id before that second call, not calling(). The refused first call ended the doubt
(after_failure: unclear_at=None), so the second call runs with no doubt written: a kill -9 during it (or a
store write that fails as its answer is lost) leaves a record that looks for its case at once, finds
nothing while AWS is still at work, and calls CreateCase again (a second case, unless AWS's in-flight
call happens to use up the set first; if AWS's call wins the race, the new call is refused as
AttachmentSetIdNotFound, a GONE_SET_CODE, and the files are uploaded once more and the case opened a
second time); and should the deadline pass, the person is told "*not* opened"."""

from __future__ import annotations

from bot.aws.gateway import SEND_ATTEMPTS
from bot.cases.unclear import in_doubt
from bot.sandbox.faults import CONNECTION_DROPPED
from bot.work import Job
from tests.cases.helpers import fast_retries
from tests.cases.test_modal import open_modal, values


def test_the_call_made_with_a_re_uploaded_set_is_in_doubt_while_it_is_under_way(bot):
    fast_retries(bot, deadline_seconds=30)
    # Throttled first (the set is saved; the refusal ends the doubt), then, on the next try, the saved set
    # has expired: the files are uploaded again and CreateCase called with the new set.
    bot.sandbox.inject_fault("CreateCase", "ThrottlingException", count=SEND_ATTEMPTS)
    bot.sandbox.inject_fault("CreateCase", "AttachmentSetExpired")
    bot.sandbox.inject_fault("CreateCase", CONNECTION_DROPPED, late_seconds=0.5)
    intake = bot.services.cases.intake
    gateway, journal = intake.gateway, intake.journal
    real_create = gateway.create_case
    seen = []  # (attachment set, in doubt as a restarted bot would read the record) at each call

    def create_case(new_case):
        entry = journal.get(keys[0])  # the record as a restarted bot would read it
        seen.append((new_case.attachment_set_id, in_doubt(Job(journal, None, entry))))
        return real_create(new_case)

    keys = []
    real_record = journal.record

    def record(key, *args, **kwargs):
        keys.append(key)
        return real_record(key, *args, **kwargs)

    gateway.create_case, journal.record = create_case, record
    try:
        log = bot.slack.add_file("db-1.log", b"disk full at 03:12\n", "text/plain")
        view = open_modal(bot)
        bot.requests.view_submission(view, values=values(subject="Opened once", files=[log]))
        bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=30)
        bot.services.work.wait_idle(timeout=30)
    finally:
        del gateway.create_case, journal.record
    # Calls: throttled (set A), expired (set A), with set B (its answer lost), and later ones.
    assert len(seen) >= 3 and seen[1][0] != seen[2][0], seen
    assert all(doubt for _, doubt in seen), f"CreateCase called with no doubt on record: {seen}"
