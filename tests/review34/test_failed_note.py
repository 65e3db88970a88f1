"""Review 34: a reply's failure is said in its thread; when the thread takes no posts (the bot removed, the
channel archived), its writer is told at least, not left with a message that silently went nowhere."""

from __future__ import annotations

from tests.sync.helpers import linked_case


def test_a_failure_the_thread_cannot_show_is_told_to_its_writer(bot):
    case, thread = linked_case(bot)
    bot.sandbox.inject_fault("AddCommunicationToCase", "CaseIdNotFound", count=1)
    bot.slack.fail("chat.postMessage", "is_archived", count=None)
    bot.user_message("C1", "the disk is replaced", user="U2", thread_ts=thread)
    [note] = bot.slack.wait_for("chat.postEphemeral", lambda c: c.params.get("user") == "U2", timeout=20)
    assert "not* sent to AWS" in note.params["text"] and "the disk is replaced" in note.params["text"]
