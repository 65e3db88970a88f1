"""Review 42: fixtures of tests/accounts (a bot serving three emulated accounts)."""

from tests.accounts.conftest import accounts_bot, accounts_bot_factory, accounts_sandbox  # noqa: F401 - fixtures
