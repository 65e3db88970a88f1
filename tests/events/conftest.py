"""Fixtures for the live-updates tests: one SQS queue per test, on moto's server and on the sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.events.queues import FaultyProxy, MotoQueues, Queues, SandboxQueues


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["moto", "sandbox"])
def queues(request: pytest.FixtureRequest) -> Iterator[Queues]:
    """The same tests against an SQS the project did not write and against the sandbox's own."""
    backend = MotoQueues(request.getfixturevalue("moto_endpoint")) if request.param == "moto" else SandboxQueues()
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def proxy(queues: Queues) -> Iterator[FaultyProxy]:
    faulty = FaultyProxy(queues.endpoint)
    try:
        yield faulty
    finally:
        faulty.close()
