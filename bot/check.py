"""`python -m bot check`: are the Slack tokens, the AWS credentials and the support plan usable?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from slack_sdk.errors import SlackApiError

from bot import render
from bot.accounts.check import check_accounts_from_env
from bot.aws.gateway import SupportGateway
from bot.config import Settings
from bot.errors import BotError
from bot.slack.client import slack_client


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def check_slack(settings: Settings) -> CheckResult:
    if not settings.slack_bot_token:
        return CheckResult("slack", False, render.console_text("check_slack_missing"))
    try:
        auth = slack_client(settings).auth_test()
    except SlackApiError as exc:
        detail = render.console_text("check_slack_failed", error=exc.response.get("error", ""))
        return CheckResult("slack", False, detail)
    except OSError as exc:
        return CheckResult(
            "slack", False, render.console_text("check_slack_unreachable", url=settings.slack_api_url, error=exc)
        )
    return CheckResult(
        "slack", True, render.console_text("check_slack_ok", team=auth.get("team", ""), user=auth.get("user", ""))
    )


def check_signing(settings: Settings) -> CheckResult:
    if settings.socket_mode:
        return CheckResult("mode", True, render.console_text("check_socket_mode"))
    if settings.slack_signing_secret:
        return CheckResult("mode", True, render.console_text("check_http_mode", port=settings.port))
    return CheckResult("mode", False, render.console_text("check_no_secret"))


def check_aws(gateway: SupportGateway) -> CheckResult:
    try:
        levels = gateway.severity_levels()
    except BotError as error:
        return CheckResult("aws", False, render.console_error_text(error))
    return CheckResult("aws", True, render.console_text("check_aws_ok", levels=[level.code for level in levels]))


def run_checks(settings: Settings, *, out: TextIO, gateway: SupportGateway | None = None) -> int:
    sandbox = None
    if gateway is None and settings.sandbox:
        from bot.bootstrap import SandboxOptions, sandbox_gateway, start_sandbox

        sandbox = start_sandbox(SandboxOptions(reply_delay_seconds=-1, state_path=None))
        gateway = sandbox_gateway(sandbox.url)
    try:
        results = [check_slack(settings), check_signing(settings)]
        # BOT_ACCOUNTS_FILE: one line per account instead of the one-account check.
        per_account = None if gateway or sandbox else check_accounts_from_env(region=settings.aws_region)
        if per_account is not None:
            results.extend(CheckResult(line.name, line.ok, line.detail) for line in per_account)
        else:
            try:
                results.append(check_aws(gateway or SupportGateway(region=settings.aws_region)))
            except BotError as error:
                results.append(CheckResult("aws", False, render.console_error_text(error)))
    finally:
        if sandbox:
            sandbox.stop()
    for result in results:
        out.write(render.console_text("check_line", ok=result.ok, name=result.name, detail=result.detail) + "\n")
    ok = all(result.ok for result in results)
    out.write(render.console_text("check_summary", ok=ok) + "\n")
    return 0 if ok else 1
