"""With state_path, a person's sandbox survives a restart of the bot (and of the sandbox)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from bot.sandbox import SandboxServer
from tests.sandbox.helpers import open_case, wait_until


def client_for(server: SandboxServer, session: boto3.session.Session) -> Any:
    return session.client("support", endpoint_url=server.url)


def test_cases_attachments_and_checks_survive_a_restart(tmp_path: Path, boto_session: boto3.session.Session) -> None:
    path = tmp_path / "state" / "sandbox.json"
    first = SandboxServer(reply_delay_seconds=None, state_path=str(path)).start()
    client = client_for(first, boto_session)
    set_id = client.add_attachments_to_set(attachments=[{"fileName": "a.txt", "data": b"alpha"}])["attachmentSetId"]
    case_id = open_case(client, attachmentSetId=set_id)
    first.add_aws_reply(case_id, "Answer")
    client.refresh_trusted_advisor_check(checkId="Qch7DwouX1")
    first.set_trusted_advisor_check_status("HCP4007jGY", "error")
    before = client.describe_cases(caseIdList=[case_id])["cases"]
    display_id = before[0]["displayId"]
    first.stop()

    second = SandboxServer(reply_delay_seconds=None, state_path=str(path)).start()
    try:
        client = client_for(second, boto_session)
        after = client.describe_cases(caseIdList=[case_id])["cases"]
        attachment_id = after[0]["recentCommunications"]["communications"][-1]["attachmentSet"][0]["attachmentId"]
        [refresh] = client.describe_trusted_advisor_check_refresh_statuses(checkIds=["Qch7DwouX1"])["statuses"]
        new_case = open_case(client, subject="after restart")

        assert after == before
        assert client.describe_attachment(attachmentId=attachment_id)["attachment"]["data"] == b"alpha"
        assert refresh["status"] != "none"
        assert second.trusted_advisor.summaries(["HCP4007jGY"])["summaries"][0]["status"] == "error"
        assert int(client.describe_cases(caseIdList=[new_case])["cases"][0]["displayId"]) > int(display_id)
    finally:
        second.stop()
    assert [p.name for p in path.parent.iterdir()] == ["sandbox.json"]  # no temp files left behind
    assert json.loads(path.read_text())["version"] == 1


def test_unanswered_communications_are_answered_after_a_restart(
    tmp_path: Path, boto_session: boto3.session.Session
) -> None:
    path = tmp_path / "sandbox.json"
    first = SandboxServer(reply_delay_seconds=None, state_path=str(path)).start()
    case_id = open_case(client_for(first, boto_session), subject="Left waiting")
    first.stop()

    second = SandboxServer(reply_delay_seconds=0.05, state_path=str(path)).start()
    try:
        assert wait_until(lambda: second.cases[case_id].status == "pending-customer-action")
    finally:
        second.stop()


def test_unreadable_state_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    path.write_text("{ not json")
    server = SandboxServer(reply_delay_seconds=None, state_path=str(path))
    assert server.cases == {}
    assert path.read_text() == "{ not json"  # kept for inspection until the first change


def test_without_state_path_nothing_is_written(tmp_path: Path, monkeypatch: Any, client: Any) -> None:
    monkeypatch.chdir(tmp_path)
    open_case(client)
    assert list(tmp_path.iterdir()) == []
