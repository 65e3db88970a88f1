"""The wire: JSON 1.1 requests and errors as botocore reads them, and the HTTP control API."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

import botocore.exceptions
import pytest

from bot.sandbox import SandboxServer
from bot.sandbox.catalog import NEW_SETS_PER_WINDOW
from tests.sandbox.helpers import open_case


def post(url: str, body: Any, headers: dict[str, str] | None = None, method: str = "POST") -> tuple[int, dict, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def get(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read())


def call(server: SandboxServer, operation: str, body: Any) -> tuple[int, dict, Any]:
    headers = {
        "X-Amz-Target": f"AWSSupport_20130415.{operation}",
        "Content-Type": "application/x-amz-json-1.1",
    }
    return post(server.url + "/", body, headers)


def test_unsigned_json_request_works(server: SandboxServer) -> None:
    status, headers, body = call(server, "DescribeSeverityLevels", {"language": "en"})
    assert status == 200
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert headers["x-amzn-RequestId"]
    assert len(body["severityLevels"]) == 5


def test_errors_carry_type_and_message(server: SandboxServer) -> None:
    status, _, body = call(server, "DescribeCommunications", {"caseId": "case-nope"})
    assert status == 400
    assert body == {"__type": "CaseIdNotFound", "message": "Case case-nope not found."}


def test_server_errors_are_500_and_client_errors_400(server: SandboxServer) -> None:
    server.inject_fault("DescribeServices", "InternalServerError")
    server.inject_fault("DescribeServices", "ThrottlingException")
    assert call(server, "DescribeServices", {})[0] == 500
    assert call(server, "DescribeServices", {})[0] == 400
    assert call(server, "DescribeServices", {})[0] == 200


def test_bad_requests(server: SandboxServer) -> None:
    assert call(server, "Explode", {})[2]["__type"] == "UnknownOperationException"
    assert call(server, "DescribeServices", b"{not json")[2]["__type"] == "SerializationException"
    assert call(server, "DescribeServices", [1, 2])[2]["__type"] == "SerializationException"
    status, _, body = call(server, "CreateCase", {"subject": "no body"})
    assert (status, body["__type"]) == (400, "ValidationException")
    assert "communicationBody" in body["message"]


def test_botocore_reads_namespaced_error_types(client: Any, server: SandboxServer) -> None:
    # Some AWS services send "namespace#Code"; botocore keeps only the part after '#'.
    server.inject_fault("DescribeServices", "com.amazonaws.support#ThrottlingException", message="Rate exceeded")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.describe_services()
    assert caught.value.response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}


def test_wildcard_faults_and_counts(client: Any, server: SandboxServer) -> None:
    server.inject_fault("*", "SubscriptionRequiredException", count=2)
    for _ in range(2):
        with pytest.raises(client.exceptions.ClientError) as caught:
            client.describe_severity_levels()
        assert caught.value.response["Error"]["Code"] == "SubscriptionRequiredException"
    assert client.describe_severity_levels()["severityLevels"]
    assert server.calls["DescribeSeverityLevels"] == 3
    server.reset_calls()
    assert server.calls.total() == 0


def test_clear_faults(client: Any, server: SandboxServer) -> None:
    server.inject_fault("*", "InternalServerError", count=100)
    server.clear_faults()
    assert client.describe_severity_levels()["severityLevels"]


# Control over HTTP ------------------------------------------------------------------------------


def test_health_and_calls(server: SandboxServer, client: Any) -> None:
    client.describe_severity_levels()
    assert get(server.url + "/_sandbox/health") == (200, {"status": "ok", "cases": 0, "checks": 80})
    assert get(server.url + "/_sandbox/calls")[1] == {"calls": {"DescribeSeverityLevels": 1}}
    assert post(server.url + "/_sandbox/calls", {}, method="DELETE")[2] == {"calls": {}}
    assert server.calls.total() == 0


def test_faults_over_http(server: SandboxServer, client: Any) -> None:
    status, _, _ = post(
        server.url + "/_sandbox/faults", {"operation": "CreateCase", "code": "CaseCreationLimitExceeded"}
    )
    assert status == 200
    with pytest.raises(client.exceptions.CaseCreationLimitExceeded):
        open_case(client)
    post(server.url + "/_sandbox/faults", {"code": "InternalServerError", "count": 5})
    post(server.url + "/_sandbox/faults", {}, method="DELETE")
    assert open_case(client)
    assert post(server.url + "/_sandbox/faults", {"operation": "CreateCase"})[0] == 400


def test_reply_over_http(server: SandboxServer, client: Any) -> None:
    case_id = open_case(client)
    data = base64.b64encode(b"trace").decode()
    status, _, communication = post(
        server.url + "/_sandbox/reply",
        {"case_id": case_id, "body": "Found it", "attachments": [{"fileName": "t.txt", "data": data}]},
    )
    assert status == 200 and communication["body"] == "Found it"
    assert communication["attachmentSet"][0]["fileName"] == "t.txt"
    assert client.describe_cases(caseIdList=[case_id])["cases"][0]["status"] == "pending-customer-action"
    assert post(server.url + "/_sandbox/reply", {"case_id": "case-nope", "body": "?"})[2]["__type"] == "CaseIdNotFound"


def test_config_and_clock_over_http(server: SandboxServer) -> None:
    status, _, config = post(
        server.url + "/_sandbox/config", {"latency_seconds": 0.01, "reply_delay_seconds": None, "check_count": 120}
    )
    assert status == 200
    assert config == {
        "latency_seconds": 0.01,
        "reply_delay_seconds": None,
        "check_count": 120,
        "attachment_sets_per_window": NEW_SETS_PER_WINDOW,
    }
    lowered = post(server.url + "/_sandbox/config", {"attachment_sets_per_window": 2})[2]
    assert lowered["attachment_sets_per_window"] == 2
    assert server.latency_seconds == 0.01
    before = server.clock.now()
    post(server.url + "/_sandbox/clock", {"advance_seconds": 3600})
    assert (server.clock.now() - before).total_seconds() >= 3600


def test_unknown_control_endpoint(server: SandboxServer) -> None:
    assert post(server.url + "/_sandbox/nothing", {})[0] == 404
