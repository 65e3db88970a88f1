"""Both backends offer the same operations, and the one that is chosen fits the platform."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.store import backend
from bot.store.postgres import PostgresStore, PostgresTable
from bot.store.tables import Store as SqliteStore
from bot.store.tables import Table as SqliteTable


def public_methods(cls: type) -> dict[str, list[str]]:
    return {
        name: list(inspect.signature(member).parameters)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") or name in {"__contains__", "__len__"}
    }


@pytest.mark.parametrize(
    ("protocol", "implementations"),
    [(backend.Table, [SqliteTable, PostgresTable]), (backend.Store, [SqliteStore, PostgresStore])],
    ids=["Table", "Store"],
)
def test_both_backends_implement_every_operation_with_the_same_parameters(
    protocol: type, implementations: list[type]
) -> None:
    """A primitive added to one backend (or to the protocol) must be added to the other one too."""
    expected = public_methods(protocol)
    for implementation in implementations:
        offered = public_methods(implementation)
        for name, parameters in expected.items():
            assert offered.get(name) == parameters, f"{implementation.__qualname__}.{name}"
    sqlite_only = set(public_methods(implementations[0])) - set(public_methods(implementations[1]))
    postgres_only = set(public_methods(implementations[1])) - set(public_methods(implementations[0]))
    assert not sqlite_only - {"connect"}, f"only in sqlite: {sqlite_only}"
    assert not postgres_only - {"connect", "connection"}, f"only in PostgreSQL: {postgres_only}"


def test_a_file_store_on_a_heroku_dyno_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DYNO", "web.1")
    settings = load_settings({"BOT_DB_PATH": str(tmp_path / "bot.sqlite")}, require_slack=False)

    backend.open_store(settings).close()

    assert "wiped at every restart" in caplog.text and "DATABASE_URL" in caplog.text


@pytest.mark.parametrize("url", ["mysql://bot:s3cret-pw@db/bot", "s3cret-pw", "bot:s3cret-pw@db:5432/bot"])
def test_a_database_url_that_is_not_postgresql_is_refused_without_echoing_it(url: str) -> None:
    from bot.config import ConfigError

    with pytest.raises(ConfigError) as raised:
        load_settings({"DATABASE_URL": url}, require_slack=False)

    assert "DATABASE_URL must be a PostgreSQL URL" in str(raised.value)
    assert "s3cret-pw" not in str(raised.value)


def test_the_database_url_stays_out_of_the_settings_repr() -> None:
    settings = load_settings({"DATABASE_URL": "postgresql://bot:s3cret-pw@db/bot"}, require_slack=False)

    assert settings.database_url == "postgresql://bot:s3cret-pw@db/bot"
    assert "s3cret-pw" not in repr(settings)
