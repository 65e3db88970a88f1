"""Review 42: CONTRACT "Environment": "`BOT_SANDBOX_ACCOUNTS` | sandbox: how many emulated accounts (aliases
`sandbox`, `sandbox-2`, …) | `1`". With the default (one account) the emulated account is served as
`default`, so the alias the contract names is refused; with 2 it is `sandbox` (bot/bootstrap.py)."""

from __future__ import annotations

from pathlib import Path

from tests.test_startup import run_bot


def test_the_one_emulated_account_answers_to_the_alias_sandbox(tmp_path: Path) -> None:
    env = {"BOT_DB_PATH": str(tmp_path / "bot.sqlite"), "BOT_SANDBOX_STATE": "", "BOT_SANDBOX_ACCOUNTS": "1"}
    done = run_bot(["digest", "--print", "--sandbox", "--account", "sandbox"], env, timeout=90)
    assert done.returncode == 0, done.stderr
    assert "Trusted Advisor digest" in done.stdout
