"""The gateway against every answer botocore's model allows: optional members missing, both spellings
of AWS's validation errors. A unit test with botocore's Stubber (end-to-end tests use the sandbox)."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import functools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.model
import pytest
from botocore.stub import Stubber

from bot.aws.gateway import ERROR_KEYS, SupportGateway
from bot.aws.session import new_session
from bot.domain import Attachment, NewCase
from bot.errors import AwsError

AWS_PACKAGE = Path(__file__).resolve().parents[2] / "bot" / "aws"
NEW_CASE = NewCase(subject="s", service_code="ec2", category_code="other", severity_code="low", body="b")

Call = Callable[[SupportGateway], Any]
# The gateway's calls of each operation it makes; each must cope with any answer the model allows.
CALLS: dict[str, tuple[Call, ...]] = {
    "CreateCase": (lambda g: g.create_case(NEW_CASE),),
    "DescribeCases": (
        lambda g: g.get_case("case-1"),
        lambda g: g.get_case("12345"),
        lambda g: g.list_cases(),
        lambda g: g.describe_cases(["case-1"]),
    ),
    "DescribeCommunications": (lambda g: g.communications("case-1"),),
    "AddCommunicationToCase": (lambda g: g.add_communication("case-1", "hello"),),
    "ResolveCase": (lambda g: g.resolve_case("case-1"),),
    "AddAttachmentsToSet": (lambda g: g.add_attachments([Attachment("a.txt", b"a")]),),
    "DescribeAttachment": (lambda g: g.attachment("attachment-1"),),
    "DescribeServices": (lambda g: g.services(),),
    "DescribeSeverityLevels": (lambda g: g.severity_levels(),),
    "DescribeTrustedAdvisorChecks": (lambda g: g.trusted_advisor_checks(),),
    "DescribeTrustedAdvisorCheckSummaries": (lambda g: g.trusted_advisor_summaries(["c1"]),),
    "DescribeTrustedAdvisorCheckResult": (lambda g: g.trusted_advisor_result("c1"),),
    "RefreshTrustedAdvisorCheck": (lambda g: g.refresh_trusted_advisor_check("c1"),),
    "DescribeTrustedAdvisorCheckRefreshStatuses": (lambda g: g.trusted_advisor_refresh_statuses(["c1"]),),
}
PAGE_TOKENS = ("nextToken",)  # a whole answer is one page: no token at the top


@functools.cache
def _session() -> boto3.session.Session:
    # One session for every gateway here: each gateway still gets its own clients, and so its own Stubbers.
    return new_session(aws_access_key_id="AKID", aws_secret_access_key="secret", region_name="us-east-1")


@functools.cache
def _model() -> botocore.model.ServiceModel:
    return _session().client("support").meta.service_model


def example(shape: botocore.model.Shape) -> Any:
    """A value for `shape` with every member present."""
    if isinstance(shape, botocore.model.StructureShape):
        return {name: example(member) for name, member in shape.members.items()}
    if isinstance(shape, botocore.model.ListShape):
        return [example(shape.member)]
    if isinstance(shape, botocore.model.MapShape):
        return {"k": example(shape.value)}
    if isinstance(shape, botocore.model.StringShape):
        return shape.enum[0] if shape.enum else f"{shape.name}-1"
    return {
        "integer": 1,
        "long": 1,
        "double": 1.5,
        "float": 1.5,
        "boolean": True,
        "blob": b"x",
        "timestamp": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    }[shape.type_name]


def optional_paths(shape: botocore.model.Shape, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Where a member the model marks optional sits, at any depth (list entries: index 0)."""
    if isinstance(shape, botocore.model.StructureShape):
        for name, member in shape.members.items():
            if name not in shape.required_members:
                yield (*path, name)
            yield from optional_paths(member, (*path, name))
    elif isinstance(shape, botocore.model.ListShape):
        yield from optional_paths(shape.member, (*path, 0))


def without(document: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    trimmed = copy.deepcopy(document)
    parent: Any = trimmed
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return trimmed


def answers() -> Iterator[Any]:
    model = _model()
    for operation in sorted(CALLS):
        for path in optional_paths(model.operation_model(operation).output_shape):
            if path[0] not in PAGE_TOKENS:
                for index, call in enumerate(CALLS[operation]):
                    yield pytest.param(operation, call, path, id=f"{operation}#{index}-{'.'.join(map(str, path))}")


def every_call() -> list[Any]:
    return [
        pytest.param(operation, call, id=f"{operation}#{index}")
        for operation in sorted(CALLS)
        for index, call in enumerate(CALLS[operation])
    ]


def full_answer(operation: str) -> dict[str, Any]:
    answer = example(_model().operation_model(operation).output_shape)
    for token in PAGE_TOKENS:
        answer.pop(token, None)
    return answer


def stubbed_gateway(operation: str, answer: dict[str, Any]) -> tuple[SupportGateway, list[Stubber]]:
    gateway = SupportGateway(session=_session(), max_attempts=1)
    stubbers = []
    # The gateway has a client that retries and one that never does (calls that create something).
    for client in (gateway.client, gateway._single):
        stubber = Stubber(client)
        stubber.add_response(CALLS_METHOD[operation], answer)
        # CreateCase without its caseId: the gateway looks for the case before it gives up.
        stubber.add_response("describe_cases", {"cases": []})
        stubber.activate()
        stubbers.append(stubber)
    return gateway, stubbers


CALLS_METHOD = {name: botocore.xform_name(name) for name in CALLS}


def _no_none_in_text_fields(value: Any) -> None:
    """Domain records keep their promise: a str field holds a str, whatever AWS left out."""
    if isinstance(value, list | tuple):
        for item in value:
            _no_none_in_text_fields(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if field.type == "str":
                assert isinstance(item, str), f"{type(value).__name__}.{field.name} is {item!r}"
            _no_none_in_text_fields(item)


def test_every_operation_the_gateway_calls_is_walked() -> None:
    client = _session().client("support")
    source = "\n".join(path.read_text() for path in AWS_PACKAGE.glob("*.py"))
    methods = set(re.findall(r"client\.(\w+)\(", source)) | set(re.findall(r"get_paginator\(\"(\w+)\"\)", source))
    operations = {client.meta.method_to_api_mapping[m] for m in methods if m in client.meta.method_to_api_mapping}
    assert operations and operations <= set(CALLS), sorted(operations - set(CALLS))


@pytest.mark.parametrize(("operation", "call", "path"), list(answers()))
def test_an_answer_without_an_optional_member_gives_a_default_or_a_clear_error(
    operation: str, call: Call, path: tuple[Any, ...]
) -> None:
    gateway, _ = stubbed_gateway(operation, without(full_answer(operation), path))
    try:
        result = call(gateway)
    except AwsError as error:
        # A clear error names what was missing (no cases at all: no such case); anything else (a stub
        # exhausted, a KeyError) is a bug.
        if error.key == "case_not_found":
            assert path == ("cases",), error
        else:
            assert error.key == "aws_incomplete_answer" and error.params["member"] in path, error
    else:
        _no_none_in_text_fields(result)


@pytest.mark.parametrize(("operation", "call"), every_call())
def test_a_full_answer_works(operation: str, call: Call) -> None:
    gateway, _ = stubbed_gateway(operation, full_answer(operation))
    _no_none_in_text_fields(call(gateway))


def test_every_modeled_error_of_these_operations_has_a_message() -> None:
    model = _model()
    codes = {shape.error_code for op in CALLS for shape in model.operation_model(op).error_shapes}
    assert codes <= set(ERROR_KEYS), sorted(codes - set(ERROR_KEYS))


VALIDATION_CODES = ["ValidationException", "ValidationError", "InvalidParameterValueException", "InvalidParameterValue"]


@pytest.mark.parametrize("code", VALIDATION_CODES)
def test_both_spellings_of_validation_errors_are_validation_errors(code: str) -> None:
    gateway = SupportGateway(session=_session(), max_attempts=1)
    with Stubber(gateway.client) as stubber:
        stubber.add_client_error("describe_severity_levels", service_error_code=code, service_message="bad")
        with pytest.raises(AwsError) as caught:
            gateway.severity_levels()
    assert (caught.value.key, caught.value.code) == ("aws_validation", code)


@pytest.mark.parametrize("code", ["ValidationError", "InvalidParameterValue"])
def test_an_unknown_check_is_skipped_whichever_spelling_aws_uses(code: str) -> None:
    gateway = SupportGateway(session=_session(), max_attempts=1)
    answer = full_answer("DescribeTrustedAdvisorCheckSummaries")
    answer["summaries"][0]["checkId"] = "good"
    with Stubber(gateway.client) as stubber:
        stubber.add_client_error("describe_trusted_advisor_check_summaries", service_error_code=code)
        stubber.add_client_error("describe_trusted_advisor_check_summaries", service_error_code=code)
        stubber.add_response("describe_trusted_advisor_check_summaries", answer)
        found = gateway.trusted_advisor_summaries(["retired", "good"])
    assert [s.check_id for s in found] == ["good"]
