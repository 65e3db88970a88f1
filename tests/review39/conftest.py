"""Review 39: fixtures of tests/store (a throwaway PostgreSQL cluster) and tests/accounts (the accounts sandbox)."""

from tests.accounts.conftest import accounts_sandbox  # noqa: F401 - a fixture
from tests.store.conftest import pg_store, pg_stores, pg_url  # noqa: F401 - fixtures
from tests.support.postgres import postgres_cluster  # noqa: F401 - a fixture
