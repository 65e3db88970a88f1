"""Sessions built on the shared loader behave as boto3's own, and share what they may."""

from __future__ import annotations

from typing import Any

import boto3

from bot.aws.session import new_session, shared_loader


def _handlers(session: boto3.session.Session) -> dict[tuple[str, ...], list[str]]:
    """Every event handler registered on the session, by event name, in calling order."""

    def walk(node: dict[str, Any], path: tuple[str, ...]) -> dict[tuple[str, ...], list[str]]:
        found = {}
        values = node.get("values")
        if values is not None:
            handlers = values.first + values.middle + values.last
            found[path] = [getattr(h, "__qualname__", type(h).__name__) for h in handlers]
        for key, child in node.get("children", {}).items():
            found.update(walk(child, (*path, key)))
        return found

    return walk(session._session._original_handler._handlers._root, ())


def test_every_session_has_botocores_built_in_handlers_as_a_plain_session_has() -> None:
    plain = boto3.session.Session(region_name="us-east-1")
    shared = new_session(region_name="us-east-1")
    assert _handlers(shared) == _handlers(plain)
    assert len(_handlers(shared)) > 50


def test_sessions_share_one_loader_whose_paths_do_not_grow() -> None:
    first, second = new_session(region_name="us-east-1"), new_session(region_name="eu-west-1")
    paths = list(shared_loader().search_paths)
    third = new_session(region_name="us-east-1")
    assert first._loader is second._loader is third._loader is shared_loader()
    assert shared_loader().search_paths == paths
    assert len(set(paths)) == len(paths)


def test_a_handler_registered_on_one_session_stays_on_that_session() -> None:
    first, second = new_session(region_name="us-east-1"), new_session(region_name="us-east-1")
    first.events.register("before-call.support", lambda **_: None, unique_id="only-first")
    assert _handlers(first) != _handlers(second)
    assert _handlers(second) == _handlers(new_session(region_name="us-east-1"))


def test_credentials_and_region_stay_per_session() -> None:
    one = new_session(aws_access_key_id="AKIDONE", aws_secret_access_key="s1", region_name="us-east-1")
    two = new_session(aws_access_key_id="AKIDTWO", aws_secret_access_key="s2", region_name="eu-west-1")
    assert one.get_credentials().access_key == "AKIDONE"
    assert two.get_credentials().access_key == "AKIDTWO"
    assert (one.region_name, two.region_name) == ("us-east-1", "eu-west-1")
    assert one.client("support").meta.service_model is not None


def test_a_handler_a_library_adds_to_botocores_built_ins_later_reaches_new_sessions(monkeypatch) -> None:
    # moto's in-process mock appends its stubber to botocore's list when it is imported.
    import botocore.handlers

    new_session(region_name="us-east-1")  # the shared handlers are built before the library comes

    def stub(**_: object) -> None:
        return None

    added = [*botocore.handlers.BUILTIN_HANDLERS, ("before-send", stub)]
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", added)
    assert _handlers(new_session(region_name="us-east-1")) == _handlers(boto3.session.Session(region_name="us-east-1"))
    assert "stub" in str(_handlers(new_session(region_name="us-east-1"))[("before-send",)])
