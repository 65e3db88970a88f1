"""deploy/events.yaml and deploy/events-member.yaml: valid CloudFormation that wires what the consumer expects."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CENTRAL = ROOT / "deploy" / "events.yaml"
MEMBER = ROOT / "deploy" / "events-member.yaml"
PATTERN = {"source": ["aws.support"], "detail-type": ["Support Case Update"]}
BOT_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (!Ref, !GetAtt, !Sub …) as {"Ref": …} / {"Fn::…": …}."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


def load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


@pytest.mark.parametrize("path", [CENTRAL, MEMBER], ids=lambda p: p.name)
def test_templates_pass_cfn_lint(path: Path) -> None:
    from cfnlint.api import lint_file

    assert [str(match) for match in lint_file(path)] == []


def test_the_queue_has_a_dead_letter_queue_after_five_receives() -> None:
    resources = load(CENTRAL)["Resources"]
    redrive = resources["EventQueue"]["Properties"]["RedrivePolicy"]
    assert redrive == {"deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}, "maxReceiveCount": 5}
    assert resources["DeadLetterQueue"]["Type"] == "AWS::SQS::Queue"
    # Longer than a long poll: the bot asks for 20 s waits.
    assert resources["EventQueue"]["Properties"]["VisibilityTimeout"] > 20


def test_only_the_rule_may_send_to_the_queue() -> None:
    resources = load(CENTRAL)["Resources"]
    [statement] = resources["QueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["SupportCaseUpdateRule", "Arn"]}}}


def test_rules_match_support_case_updates_in_us_east_1() -> None:
    central, member = load(CENTRAL), load(MEMBER)
    rule = central["Resources"]["SupportCaseUpdateRule"]["Properties"]
    assert rule["EventPattern"] == PATTERN
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["EventQueue", "Arn"]}
    forward = member["Resources"]["ForwardSupportCaseUpdates"]["Properties"]
    assert forward["EventPattern"] == PATTERN
    assert forward["Targets"][0]["Arn"] == {"Ref": "CentralEventBusArn"}
    for template in (central, member):
        [assertion] = template["Rules"]["SupportEventsRegion"]["Assertions"]
        assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}


def test_the_central_bus_admits_the_organization_only() -> None:
    template = load(CENTRAL)
    policy = template["Resources"]["OrganizationPutEvents"]
    assert policy["Condition"] == "ForwardFromOrganization"
    statement = policy["Properties"]["Statement"]
    assert statement["Action"] == "events:PutEvents"
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}


def test_the_bot_policy_and_the_readme_name_the_same_four_actions() -> None:
    statement = load(CENTRAL)["Resources"]["BotQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Action"] == BOT_ACTIONS
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Live updates", 1)[1].split("\n## ", 1)[0]
    assert sorted(set(re.findall(r'"(sqs:[A-Za-z]+)"', section))) == sorted(BOT_ACTIONS)
    assert "deploy/events.yaml" in section and "deploy/events-member.yaml" in section
