"""`python -m bot digest --print [--json]`: the digest on a terminal, without Slack."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.digest.console import print_digest
from tests.digest.factories import assert_valid_message

ROOT = Path(__file__).resolve().parents[2]


def print_to(bot: Any, out: io.StringIO, *, as_json: bool = False) -> int:
    zone = ZoneInfo(bot.settings.digest_timezone)
    return print_digest(bot.services.digests, zone=zone, as_json=as_json, out=out)


def test_print_digest_text_and_json(bot: Any) -> None:
    text, blocks = io.StringIO(), io.StringIO()

    assert print_to(bot, text) == 0
    assert print_to(bot, blocks, as_json=True) == 0

    assert "action recommended" in text.getvalue() and "Top flagged checks" in text.getvalue()
    payload = json.loads(blocks.getvalue())
    assert payload["text"].startswith("Trusted Advisor digest:")
    assert_valid_message(payload["blocks"])
    assert bot.services.digests.previous("C1") is None  # the terminal tracks no channel


def test_print_digest_reports_aws_failures(bot: Any) -> None:
    out = io.StringIO()
    bot.sandbox.inject_fault("DescribeTrustedAdvisorChecks", "AccessDeniedException")

    assert print_to(bot, out) == 1
    assert "IAM policy" in out.getvalue()


def test_the_console_command_on_a_fresh_install(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BOT_", "AWS_"))}
    env.update(PYTHONPATH=str(ROOT), DIGEST_TIMEZONE="Europe/Paris", LOG_LEVEL="WARNING")

    done = subprocess.run(
        [sys.executable, "-m", "bot", "digest", "--print", "--sandbox"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Trusted Advisor digest · sandbox account · ") and lines[0].endswith(("CET", "CEST"))
    assert "estimated monthly savings" in done.stdout and "Operational excellence" in done.stdout


def run_console(tmp_path: Path, *args: str, accounts: int = 2) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BOT_", "AWS_"))}
    env.update(PYTHONPATH=str(ROOT), LOG_LEVEL="WARNING", BOT_SANDBOX_ACCOUNTS=str(accounts))
    return subprocess.run(
        [sys.executable, "-m", "bot", "digest", "--print", "--sandbox", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_the_console_prints_a_named_account_or_the_roll_up(tmp_path: Path) -> None:
    named = run_console(tmp_path, "--account", "sandbox-2")
    assert named.returncode == 0, named.stderr
    assert named.stdout.splitlines()[0].startswith("Trusted Advisor digest · sandbox account sandbox-2 (")

    rollup = run_console(tmp_path, "--account", "all")
    assert rollup.returncode == 0, rollup.stderr
    assert rollup.stdout.startswith("Trusted Advisor roll-up · 2 AWS accounts · ")
    assert "sandbox (" in rollup.stdout and "sandbox-2 (" in rollup.stdout
    assert "Top flagged checks across accounts" in rollup.stdout

    as_json = run_console(tmp_path, "--account", "all", "--json")
    assert as_json.returncode == 0, as_json.stderr
    payload = json.loads(as_json.stdout)
    assert payload["text"].startswith("Trusted Advisor roll-up of 2 AWS accounts")
    assert_valid_message(payload["blocks"])
    assert "digest_refresh" not in as_json.stdout  # nothing to click on a terminal


def test_the_console_refuses_an_unknown_account_in_one_line(tmp_path: Path) -> None:
    done = run_console(tmp_path, "--account", "nope")
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert '"nope"' in line and "sandbox, sandbox-2" in line
