"""The throwaway cluster: without PostgreSQL its tests skip with the reason, unless CI requires them."""

from __future__ import annotations

import pytest

from tests.support import postgres


@pytest.fixture
def no_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "find_bin_dir", lambda: None)


def test_missing_postgresql_skips_with_the_reason(no_postgres: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(postgres.REQUIRE_ENV, raising=False)

    with pytest.raises(pytest.skip.Exception, match="PostgreSQL not found.*install PostgreSQL"):
        postgres.start_cluster()


def test_missing_postgresql_fails_when_ci_requires_it(no_postgres: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(postgres.REQUIRE_ENV, "1")

    with pytest.raises(pytest.fail.Exception, match="PostgreSQL not found.*must run here"):
        postgres.start_cluster()
