"""The member-account role grants exactly the Support actions the README's least-privilege policy lists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUPPORT_ACTION = re.compile(r"support:[A-Za-z]+")


def readme_policy_actions() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## AWS permissions", 1)[1].split("\n## ", 1)[0]
    return set(SUPPORT_ACTION.findall(section))


def test_the_role_template_allows_the_readmes_support_actions_and_no_others():
    template = (ROOT / "deploy" / "member-role.yaml").read_text()
    assert readme_policy_actions()
    assert set(SUPPORT_ACTION.findall(template)) == readme_policy_actions()
    assert "support:*" not in template


def test_the_role_trusts_the_bots_account_and_checks_the_external_id():
    template = (ROOT / "deploy" / "member-role.yaml").read_text()
    assert "sts:AssumeRole" in template
    assert "arn:${AWS::Partition}:iam::${BotAccountId}:root" in template
    assert "sts:ExternalId: !Ref ExternalId" in template
