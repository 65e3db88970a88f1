"""Store fixtures: `store` runs a test against each backend; PostgreSQL from one throwaway cluster per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store.backend import Store
from tests.support.postgres import PostgresCluster, postgres_cluster  # noqa: F401 - a fixture

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def contract_db(postgres_cluster: PostgresCluster) -> str:  # noqa: F811
    """One database for the contract suite; each test starts from an empty `kv`."""
    return postgres_cluster.create_database("contract")


@pytest.fixture
def pg_url(postgres_cluster: PostgresCluster) -> str:  # noqa: F811
    """A fresh, empty database of its own (no schema yet)."""
    return postgres_cluster.create_database()


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    """One PostgreSQL store on a fresh database."""
    from bot.store.postgres import PostgresStore

    opened = PostgresStore.connect(pg_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def pg_stores(pg_url: str) -> Iterator[tuple[Store, Store]]:
    """Two PostgreSQL stores on one fresh database: two replicas' pools."""
    from bot.store.postgres import PostgresStore

    first, second = PostgresStore.connect(pg_url), PostgresStore.connect(pg_url)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def open_backend(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    if backend == "sqlite":
        from bot.store.tables import Store as SqliteStore

        return SqliteStore(str(tmp_path / "state" / "bot.sqlite"))
    from bot.store.postgres import PostgresStore

    url = request.getfixturevalue("contract_db")
    opened = PostgresStore.connect(url)
    with opened.connection() as conn:
        conn.execute("TRUNCATE kv")
    return opened


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """An empty store of each backend in turn."""
    opened = open_backend(backend, tmp_path, request)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def reopen(backend: str, tmp_path: Path, request: pytest.FixtureRequest):
    """Open the same store again (a restart): same file, same database."""
    from bot.store.postgres import PostgresStore
    from bot.store.tables import Store as SqliteStore

    opened: list[Store] = []

    def make() -> Store:
        if backend == "sqlite":
            again: Store = SqliteStore(str(tmp_path / "state" / "bot.sqlite"))
        else:
            again = PostgresStore.connect(request.getfixturevalue("contract_db"))
        opened.append(again)
        return again

    yield make
    for again in opened:
        again.close()
