"""A bot serving three emulated accounts, for the end-to-end tests of several accounts.

- `main` (123456789012, the sandbox's management account): every channel;
- `prod` (200000000002): only channel CPROD;
- `stage` (200000000003): every channel; tests deny its AssumeRole to make it unreachable.
"""

from __future__ import annotations

from bot.domain import Case, NewCase
from tests.support.harness import BotHarness

ACCOUNTS = [
    {"alias": "main", "id": "123456789012"},
    {"alias": "prod", "id": "200000000002", "channels": ["CPROD"]},
    {"alias": "stage", "id": "200000000003"},
]
ALIAS_OF = {"main": "sandbox", "prod": "sandbox-2", "stage": "sandbox-3"}  # the sandbox's own names
SERVICE, CATEGORY = "amazon-elastic-compute-cloud-linux", "other"


def open_case_in(bot: BotHarness, alias: str, subject: str = "Instance unreachable", body: str = "It stopped.") -> Case:
    """A case opened outside Slack in account `alias`, straight through that account's gateway."""
    gateway = bot.services.gateways[alias]
    case_id = gateway.create_case(NewCase(subject, SERVICE, CATEGORY, "high", body))
    return gateway.get_case(case_id)
