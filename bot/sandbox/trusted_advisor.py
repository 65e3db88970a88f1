"""Trusted Advisor as the Support API shows it: checks, summaries, flagged resources, refreshes.

The built-in checks carry the names and IDs a real account shows; their results are generated
from a seed per check, so every run (and every sandbox) answers the same. Benchmarks can ask for
hundreds or thousands of checks; those are synthesized from the service catalog.
"""

from __future__ import annotations

import random
import string
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.sandbox import catalog
from bot.sandbox.errors import invalid_parameter
from bot.sandbox.times import Clock, format_seconds, parse_time

COST = "cost_optimizing"
SECURITY = "security"
FAULT_TOLERANCE = "fault_tolerance"
PERFORMANCE = "performance"
SERVICE_LIMITS = "service_limits"
OPERATIONAL_EXCELLENCE = "operational_excellence"
CATEGORIES = (COST, SECURITY, FAULT_TOLERANCE, PERFORMANCE, SERVICE_LIMITS, OPERATIONAL_EXCELLENCE)
STATUSES = ("ok", "warning", "error", "not_available")

AUTO = "auto"  # refreshed by AWS on its own schedule; manual refresh is refused
NO_SUMMARY = "no-summary"  # DescribeTrustedAdvisorCheckSummaries leaves the check out

REFRESH_INTERVAL_SECONDS = 300  # a check can be refreshed again 5 minutes after a refresh

REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1", "ap-southeast-2")
REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-central-1": "EU (Frankfurt)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
}
TRAFFIC_LIGHT = {"error": "Red", "warning": "Yellow", "ok": "Green"}
LIMIT_SERVICES = (
    "Auto Scaling",
    "CloudFormation",
    "DynamoDB",
    "EBS",
    "EC2",
    "ELB",
    "IAM",
    "Kinesis",
    "RDS",
    "SES",
    "VPC",
)

# Column sets shared by several checks ---------------------------------------------------------

LIMIT_COLUMNS = ("Region", "Service", "Limit Name", "Limit Amount", "Current Usage", "Status")
CONFIG_RULE_COLUMNS = ("Status", "Region", "Resource", "AWS Config Rule", "Input Parameters", "Last Updated Time")
WELL_ARCHITECTED_COLUMNS = (
    "Status",
    "Region",
    "Workload ARN",
    "Workload Name",
    "Reviewer Name",
    "Workload type",
    "Workload started date",
    "Workload last modified date",
    "Number of identified HRIs",
    "Number of HRIs resolved",
    "Number of questions answered",
    "Total number of questions",
    "Last updated time",
)
SNAPSHOT_COLUMNS = (
    "Region",
    "Volume ID",
    "Volume Name",
    "Snapshot ID",
    "Snapshot Name",
    "Snapshot Age",
    "Volume Attachment",
    "Status",
    "Reason",
)
LAMBDA_RATE_COLUMNS = (
    "Status",
    "Region",
    "Function ARN",
    "Max Daily Error Rate",
    "Date for Max Error Rate",
    "Average Daily Error Rate",
    "Lost Daily Compute Cost",
    "Average Daily Invokes",
    "Current Day Invokes",
    "Current Day Error Rate",
)
ELB_STATUS_COLUMNS = ("Region", "Load Balancer Name", "Status", "Reason")

# (check ID, category, name, metadata columns, status, flags)
BUILT_IN: tuple[tuple[str, str, str, tuple[str, ...], str, tuple[str, ...]], ...] = (
    # Cost optimizing
    (
        "Qch7DwouX1",
        COST,
        "Low Utilization Amazon EC2 Instances",
        (
            "Region/AZ",
            "Instance ID",
            "Instance Name",
            "Instance Type",
            "Estimated Monthly Savings",
            "14-Day Average CPU Utilization",
            "14-Day Average Network I/O",
            "Number of Days Low Utilization",
        ),
        "warning",
        (),
    ),
    (
        "hjLMh88uM8",
        COST,
        "Idle Load Balancers",
        ("Region", "Load Balancer Name", "Reason", "Estimated Monthly Savings"),
        "warning",
        (),
    ),
    (
        "DAvU99Dc4C",
        COST,
        "Underutilized Amazon EBS Volumes",
        (
            "Region",
            "Volume ID",
            "Volume Name",
            "Volume Type",
            "Volume Size",
            "Monthly Storage Cost",
            "Snapshot ID",
            "Snapshot Name",
            "Snapshot Age",
        ),
        "error",
        (),
    ),
    ("Z4AUBRNSmz", COST, "Unassociated Elastic IP Addresses", ("Region", "IP Address"), "warning", ()),
    (
        "Ti39halfu8",
        COST,
        "Amazon RDS Idle DB Instances",
        (
            "Region",
            "DB Instance Name",
            "Multi-AZ",
            "Instance Type",
            "Storage Provisioned (GB)",
            "Days Since Last Connection",
            "Estimated Monthly Savings (On Demand)",
        ),
        "ok",
        (),
    ),
    (
        "G31sQ1E9U",
        COST,
        "Underutilized Amazon Redshift Clusters",
        ("Status", "Region", "Cluster", "Instance Type", "Reason", "Estimated Monthly Savings"),
        "ok",
        (),
    ),
    (
        "1e93e4c0b5",
        COST,
        "Amazon EC2 Reserved Instance Lease Expiration",
        (
            "Status",
            "Zone",
            "Instance Type",
            "Platform",
            "Instance Count",
            "Current Monthly Cost",
            "Estimated Monthly Savings",
            "Expiration Date",
            "Reserved Instance ID",
            "Reason",
        ),
        "warning",
        (),
    ),
    (
        "cX3c2R1chu",
        COST,
        "Amazon EC2 Reserved Instances Optimization",
        (
            "Region",
            "Instance Type",
            "Platform",
            "Recommended number of RIs to purchase",
            "Expected Average RI Utilization",
            "Estimated Savings with Recommendation (monthly)",
            "Upfront Cost of RIs",
            "Estimated cost of RIs (monthly)",
            "Estimated Break Even (months)",
            "Lookback Period (days)",
            "Term (years)",
        ),
        "warning",
        (),
    ),
    (
        "51fC20e7I2",
        COST,
        "Amazon Route 53 Latency Resource Record Sets",
        ("Hosted Zone Name", "Hosted Zone ID", "Resource Record Set Name", "Resource Record Set Type"),
        "ok",
        (),
    ),
    (
        "vZ2c2W1srf",
        COST,
        "Savings Plan",
        (
            "Savings Plan type",
            "Payment option",
            "Upfront cost",
            "Hourly commitment to purchase",
            "Estimated average utilization",
            "Estimated monthly savings",
            "Estimated savings percentage",
            "Term",
            "Lookback period (days)",
        ),
        "not_available",
        (),
    ),
    (
        "L4dfs2Q3C3",
        COST,
        "AWS Lambda Functions with Excessive Timeouts",
        (
            "Status",
            "Region",
            "Function ARN",
            "Max Daily Timeout Rate",
            "Date for Max Daily Timeout Rate",
            "Average Daily Timeout Rate",
            "Function Timeout Settings (millisecond)",
            "Lost Daily Compute Cost",
            "Average Daily Invokes",
            "Current Day Invokes",
            "Current Day Timeout Rate",
        ),
        "ok",
        (),
    ),
    ("L4dfs2Q3C2", COST, "AWS Lambda Functions with High Error Rates", LAMBDA_RATE_COLUMNS, "warning", ()),
    (
        "Wxdfp4B1L1",
        COST,
        "AWS Well-Architected high risk issues for cost optimization",
        WELL_ARCHITECTED_COLUMNS,
        "ok",
        (AUTO,),
    ),
    # Security
    (
        "HCP4007jGY",
        SECURITY,
        "Security Groups - Specific Ports Unrestricted",
        ("Region", "Security Group Name", "Security Group ID", "Protocol", "Status", "Ports"),
        "warning",
        (),
    ),
    (
        "1iG5NDGVre",
        SECURITY,
        "Security Groups - Unrestricted Access",
        (
            "Region",
            "Security Group Name",
            "Security Group ID",
            "Protocol",
            "From Port",
            "To Port",
            "Status",
            "IP Range",
        ),
        "error",
        (),
    ),
    ("zXCkfM1nI3", SECURITY, "IAM Use", (), "ok", ()),
    (
        "Pfx0RwqBli",
        SECURITY,
        "Amazon S3 Bucket Permissions",
        (
            "Region Name",
            "Region API Parameter",
            "Bucket Name",
            "ACL Allows List",
            "ACL Allows Upload/Delete",
            "Status",
            "Policy Allows Access",
            "Ignored Bucket Name",
        ),
        "warning",
        (),
    ),
    # Red with nothing to list: consumers must not assume flagged rows explain every status.
    ("7DAFEmoDos", SECURITY, "MFA on Root Account", (), "error", ()),
    (
        "Yw2K9puPzl",
        SECURITY,
        "IAM Password Policy",
        ("Password Policy", "Uppercase", "Lowercase", "Number", "Non-alphanumeric", "Status", "Reason"),
        "warning",
        (),
    ),
    (
        "nNauJisYIT",
        SECURITY,
        "Amazon RDS Security Group Access Risk",
        ("Region", "RDS Security Group Name", "Ingress Rule", "Status", "Reason"),
        "ok",
        (),
    ),
    (
        "vjafUGJ9H0",
        SECURITY,
        "AWS CloudTrail Logging",
        ("Region", "Trail Name", "Logging Status", "Bucket Name", "Last Delivery Error", "Status"),
        "ok",
        (),
    ),
    (
        "c9D319e7sG",
        SECURITY,
        "Amazon Route 53 MX Resource Record Sets and Sender Policy Framework",
        ("Hosted Zone Name", "Hosted Zone ID", "Resource Record Set Name", "Status"),
        "ok",
        (),
    ),
    (
        "a2sEc6ILx",
        SECURITY,
        "ELB Listener Security",
        ("Region", "Load Balancer Name", "Load Balancer Port", "Status", "Reason"),
        "warning",
        (),
    ),
    (
        "xSqX82fQu",
        SECURITY,
        "ELB Security Groups",
        ("Region", "Load Balancer Name", "Status", "Security Group IDs", "Reason"),
        "ok",
        (),
    ),
    (
        "12Fnkpl8Y5",
        SECURITY,
        "Exposed Access Keys",
        (
            "Access Key ID",
            "User Name (IAM or Root)",
            "Fraud Type",
            "Case ID",
            "Time Updated",
            "Location",
            "Deadline",
            "Usage (USD per Day)",
        ),
        "ok",
        (),
    ),
    (
        "ePs02jT06w",
        SECURITY,
        "Amazon EBS Public Snapshots",
        ("Status", "Region", "Volume ID", "Snapshot ID", "Description"),
        "ok",
        (),
    ),
    (
        "rSs93HQwa1",
        SECURITY,
        "Amazon RDS Public Snapshots",
        ("Status", "Region", "DB Instance or Cluster ID", "Snapshot ID"),
        "ok",
        (),
    ),
    (
        "DqdJqYeRm5",
        SECURITY,
        "IAM Access Key Rotation",
        ("Status", "IAM User", "Access Key", "Key Last Rotated", "Reason"),
        "warning",
        (),
    ),
    (
        "L4dfs2Q4C5",
        SECURITY,
        "AWS Lambda Functions Using Deprecated Runtimes",
        (
            "Status",
            "Region",
            "Function ARN",
            "Runtime",
            "Days to Deprecation",
            "Deprecation Date",
            "Average Daily Invokes",
            "Last Updated Time",
        ),
        "error",
        (),
    ),
    (
        "Wxdfp4B1L3",
        SECURITY,
        "AWS Well-Architected high risk issues for security",
        WELL_ARCHITECTED_COLUMNS,
        "warning",
        (AUTO,),
    ),
    # Fault tolerance
    ("H7IgTzjTYb", FAULT_TOLERANCE, "Amazon EBS Snapshots", SNAPSHOT_COLUMNS, "warning", ()),
    (
        "wuy7G1zxql",
        FAULT_TOLERANCE,
        "Amazon EC2 Availability Zone Balance",
        ("Region", "Zone a", "Zone b", "Zone c", "Zone d", "Zone e", "Zone f", "Status", "Reason"),
        "ok",
        (),
    ),
    (
        "iqdCTZKCUp",
        FAULT_TOLERANCE,
        "Load Balancer Optimization",
        ("Region", "Load Balancer Name", "# of Zones", "Zone a", "Zone b", "Zone c", "Status", "Reason"),
        "warning",
        (),
    ),
    (
        "S45wrEXrLz",
        FAULT_TOLERANCE,
        "VPN Tunnel Redundancy",
        (
            "Region",
            "VPN ID",
            "VPC",
            "Virtual Private Gateway",
            "Customer Gateway",
            "Active Tunnels",
            "Status",
            "Reason",
        ),
        "not_available",
        (),
    ),
    (
        "8CNsSllI5v",
        FAULT_TOLERANCE,
        "Auto Scaling Group Resources",
        ("Region", "Auto Scaling Group Name", "Launch Type", "Resource Type", "Resource Name", "Status", "Reason"),
        "ok",
        (),
    ),
    (
        "opQPADkZvH",
        FAULT_TOLERANCE,
        "Amazon RDS Backups",
        ("Region/AZ", "DB Instance", "VPC ID", "Backup Retention Period", "Status"),
        "ok",
        (),
    ),
    (
        "f2iK5R6Dep",
        FAULT_TOLERANCE,
        "Amazon RDS Multi-AZ",
        ("Region/AZ", "DB Instance", "VPC ID", "Multi-AZ", "Status"),
        "warning",
        (),
    ),
    (
        "CLOG40CDO8",
        FAULT_TOLERANCE,
        "Auto Scaling Group Health Check",
        ("Region", "Auto Scaling Group Name", "Load Balancer Associated", "Health Check", "Status"),
        "ok",
        (),
    ),
    (
        "BueAdJ7NrP",
        FAULT_TOLERANCE,
        "Amazon S3 Bucket Logging",
        ("Region", "Bucket Name", "Target Name", "Target Exists", "Same Owner", "Write Enabled", "Status", "Reason"),
        "warning",
        (),
    ),
    (
        "cF171Db240",
        FAULT_TOLERANCE,
        "Amazon Route 53 Name Server Delegations",
        ("Hosted Zone Name", "Hosted Zone ID", "Number of Name Server Delegations Used"),
        "ok",
        (),
    ),
    (
        "C056F80cR3",
        FAULT_TOLERANCE,
        "Amazon Route 53 High TTL Resource Record Sets",
        (
            "Hosted Zone Name",
            "Hosted Zone ID",
            "Resource Record Set Name",
            "Resource Record Set Type",
            "Resource Record Set ID",
            "TTL",
        ),
        "ok",
        (),
    ),
    ("7qGXsKIUw", FAULT_TOLERANCE, "ELB Connection Draining", ELB_STATUS_COLUMNS, "ok", ()),
    ("xdeXZKIUy", FAULT_TOLERANCE, "ELB Cross-Zone Load Balancing", ELB_STATUS_COLUMNS, "warning", ()),
    (
        "R365s2Qddf",
        FAULT_TOLERANCE,
        "Amazon S3 Bucket Versioning",
        ("Region", "Bucket Name", "Versioning", "MFA Delete Enabled", "Status"),
        "warning",
        (),
    ),
    # No Direct Connect in this account: the real service returns no summary for such checks.
    (
        "0t121N1Ty3",
        FAULT_TOLERANCE,
        "AWS Direct Connect Connection Redundancy",
        ("Status", "Region", "Time Stamp", "Location", "Connection Details"),
        "not_available",
        (NO_SUMMARY,),
    ),
    (
        "Wxdfp4B1L4",
        FAULT_TOLERANCE,
        "AWS Well-Architected high risk issues for reliability",
        WELL_ARCHITECTED_COLUMNS,
        "not_available",
        (AUTO, NO_SUMMARY),
    ),
    # Performance
    (
        "ZRxQlPsb6c",
        PERFORMANCE,
        "High Utilization Amazon EC2 Instances",
        (
            "Region/AZ",
            "Instance ID",
            "Instance Name",
            "Instance Type",
            "14-Day Average CPU Utilization",
            "Number of Days over 90% CPU Utilization",
        ),
        "ok",
        (),
    ),
    (
        "tfg86AVHAZ",
        PERFORMANCE,
        "Large Number of Rules in an EC2 Security Group",
        (
            "Region",
            "Security Group Name",
            "Security Group ID",
            "VPC ID",
            "# of Inbound Rules",
            "# of Outbound Rules",
            "Status",
        ),
        "ok",
        (),
    ),
    (
        "j3DFqYTe29",
        PERFORMANCE,
        "Large Number of EC2 Security Group Rules Applied to an Instance",
        ("Region", "Instance ID", "Instance Name", "VPC ID", "# of Inbound Rules", "# of Outbound Rules", "Status"),
        "ok",
        (),
    ),
    (
        "PPkZrjsH2q",
        PERFORMANCE,
        "Amazon EBS Provisioned IOPS (SSD) Volume Attachment Configuration",
        (
            "Region/AZ",
            "Volume ID",
            "Volume Name",
            "Volume Attachment",
            "Instance ID",
            "Instance Type",
            "EBS Optimized",
            "Status",
        ),
        "warning",
        (),
    ),
    (
        "B913Ef6fb4",
        PERFORMANCE,
        "Amazon Route 53 Alias Resource Record Sets",
        (
            "Hosted Zone Name",
            "Hosted Zone ID",
            "Resource Record Set Name",
            "Resource Record Set Type",
            "Resource Record Set Identifier",
            "Alias Target",
            "Status",
        ),
        "ok",
        (),
    ),
    (
        "796d6f3D83",
        PERFORMANCE,
        "CloudFront Content Delivery Optimization",
        (
            "Region",
            "Bucket Name",
            "S3 Storage (GB)",
            "Data Transfer Out (GB)",
            "Ratio of Transfer to Storage",
            "Status",
        ),
        "not_available",
        (),
    ),
    (
        "N415c450f2",
        PERFORMANCE,
        "CloudFront Header Forwarding and Cache Hit Ratio",
        ("Distribution ID", "Distribution Domain Name", "Cache Behavior Path Pattern", "Headers", "Status"),
        "ok",
        (),
    ),
    (
        "Bh2xRR2FGH",
        PERFORMANCE,
        "Amazon EC2 to EBS Throughput Optimization",
        ("Region", "Instance ID", "Instance Type", "Time Near Maximum", "Status"),
        "ok",
        (),
    ),
    (
        "k3J2hns32g",
        PERFORMANCE,
        "Overutilized Amazon EBS Magnetic Volumes",
        ("Region", "Volume ID", "Volume Name", "Number of Days Over", "Max IOPS", "Status"),
        "warning",
        (),
    ),
    (
        "Wxdfp4B1L2",
        PERFORMANCE,
        "AWS Well-Architected high risk issues for performance",
        WELL_ARCHITECTED_COLUMNS,
        "ok",
        (AUTO,),
    ),
    # Service limits
    ("0Xc6LMYG8P", SERVICE_LIMITS, "EC2 On-Demand Instances", LIMIT_COLUMNS, "warning", ()),
    ("fW7HH0l7J9", SERVICE_LIMITS, "Auto Scaling Groups", LIMIT_COLUMNS, "ok", ()),
    ("aW7HH0l7J9", SERVICE_LIMITS, "Auto Scaling Launch Configurations", LIMIT_COLUMNS, "ok", ()),
    ("gW7HH0l7J9", SERVICE_LIMITS, "CloudFormation Stacks", LIMIT_COLUMNS, "ok", ()),
    ("eI7KK0l7J9", SERVICE_LIMITS, "EBS Active Snapshots", LIMIT_COLUMNS, "warning", ()),
    ("dH7RR0l6J9", SERVICE_LIMITS, "EBS General Purpose SSD (gp2) Volume Storage", LIMIT_COLUMNS, "ok", ()),
    ("aW9HH0l8J6", SERVICE_LIMITS, "EC2 Elastic IP Addresses", LIMIT_COLUMNS, "error", ()),
    ("jL7PP0l7J9", SERVICE_LIMITS, "VPC", LIMIT_COLUMNS, "ok", ()),
    ("kM7QQ0l7J9", SERVICE_LIMITS, "VPC Internet Gateways", LIMIT_COLUMNS, "ok", ()),
    ("oQ7TT0l7J9", SERVICE_LIMITS, "IAM Roles", LIMIT_COLUMNS, "ok", ()),
    ("qS7VV0l7J9", SERVICE_LIMITS, "IAM Users", LIMIT_COLUMNS, "ok", ()),
    ("jtlIMO3qZM", SERVICE_LIMITS, "RDS DB Instances", LIMIT_COLUMNS, "ok", ()),
    ("EM8b3yLRTr", SERVICE_LIMITS, "ELB Application Load Balancers", LIMIT_COLUMNS, "ok", ()),
    ("6gtQddfEw6", SERVICE_LIMITS, "DynamoDB Read Capacity", LIMIT_COLUMNS, "ok", ()),
    ("c5ftjdfkMr", SERVICE_LIMITS, "DynamoDB Write Capacity", LIMIT_COLUMNS, "ok", ()),
    ("hJ7NN0l7J9", SERVICE_LIMITS, "SES Daily Sending Quota", LIMIT_COLUMNS, "not_available", ()),
    ("bW7HH0l7J9", SERVICE_LIMITS, "Kinesis Shards per Region", LIMIT_COLUMNS, "ok", ()),
    # Operational excellence: evaluated from AWS Config rules, refreshed by AWS, not on request.
    (
        "c1dfprch01",
        OPERATIONAL_EXCELLENCE,
        "Amazon API Gateway Not Logging Execution Logs",
        CONFIG_RULE_COLUMNS,
        "warning",
        (AUTO,),
    ),
    (
        "c1dfprch02",
        OPERATIONAL_EXCELLENCE,
        "AWS CloudFormation Stack Notification Check",
        CONFIG_RULE_COLUMNS,
        "ok",
        (AUTO,),
    ),
    (
        "c1dfprch03",
        OPERATIONAL_EXCELLENCE,
        "Amazon EC2 Instances Not Managed by AWS Systems Manager",
        CONFIG_RULE_COLUMNS,
        "warning",
        (AUTO,),
    ),
    (
        "c1dfprch04",
        OPERATIONAL_EXCELLENCE,
        "Amazon S3 Server Access Logs Enabled",
        CONFIG_RULE_COLUMNS,
        "error",
        (AUTO,),
    ),
    (
        "c1dfprch05",
        OPERATIONAL_EXCELLENCE,
        "AWS Lambda Functions Without Dead-Letter Queue",
        CONFIG_RULE_COLUMNS,
        "not_available",
        (AUTO,),
    ),
    ("c1dfprch06", OPERATIONAL_EXCELLENCE, "Amazon ECS Task Logging", CONFIG_RULE_COLUMNS, "ok", (AUTO, NO_SUMMARY)),
    (
        "c1dfprch07",
        OPERATIONAL_EXCELLENCE,
        "AWS CloudTrail Management Event Logging",
        CONFIG_RULE_COLUMNS,
        "ok",
        (AUTO,),
    ),
)

SYNTHETIC_ASPECTS = {
    COST: ("Idle Resources", "Underutilized Capacity", "Unused Reservations", "Oversized Provisioning"),
    SECURITY: ("Public Access", "Encryption at Rest", "Unrestricted Network Access", "Logging Disabled"),
    FAULT_TOLERANCE: ("Backup Coverage", "Multi-AZ Configuration", "Cross-Region Replication", "Deletion Protection"),
    PERFORMANCE: ("High Utilization", "Provisioned Throughput", "Throttled Requests"),
    SERVICE_LIMITS: ("Quota Usage",),
    OPERATIONAL_EXCELLENCE: ("Execution Logging", "Monitoring Configuration", "Tag Compliance"),
}
SYNTHETIC_COLUMNS = {
    COST: ("Region", "Resource", "Resource Name", "Estimated Monthly Savings", "Status"),
    SERVICE_LIMITS: LIMIT_COLUMNS,
    OPERATIONAL_EXCELLENCE: CONFIG_RULE_COLUMNS,
}
SYNTHETIC_DEFAULT_COLUMNS = ("Status", "Region", "Resource", "Resource Name", "Reason", "Last Updated Time")
SYNTHETIC_STATUS_WEIGHTS = (("ok", 55), ("warning", 25), ("error", 12), ("not_available", 8))

DESCRIPTION = (
    "{lead}<br>\n<br>\n<b>Alert Criteria</b><br>\nYellow: {yellow}<br>\nRed: {red}<br>\n<br>\n"
    "<b>Recommended Action</b><br>\n{action}<br>\n<br>\n<b>Additional Resources</b><br>\n"
    '<a href="https://docs.aws.amazon.com/awssupport/latest/user/trusted-advisor-check-reference.html" '
    'target="_blank">AWS Trusted Advisor check reference</a>'
)
DESCRIPTION_PARTS = {
    COST: (
        "Checks your account for {name} and estimates the monthly savings of acting on them.",
        "A resource costs more than it is used.",
        "The waste exceeds the category's threshold.",
        "Stop, resize or release the flagged resources.",
    ),
    SECURITY: (
        "Checks {name} for settings that expose your account or data.",
        "A setting is weaker than recommended.",
        "A setting allows unrestricted or public access.",
        "Restrict access to the flagged resources.",
    ),
    FAULT_TOLERANCE: (
        "Checks {name} for single points of failure.",
        "A resource is not protected against a single failure.",
        "A resource has no recovery point.",
        "Add redundancy or backups for the flagged resources.",
    ),
    PERFORMANCE: (
        "Checks {name} for configurations that limit performance.",
        "A resource runs close to its capacity.",
        "A resource is saturated.",
        "Scale or reconfigure the flagged resources.",
    ),
    SERVICE_LIMITS: (
        "Checks for usage that is more than 80% of the {name} limit. Values are based on a snapshot.",
        "80% of limit reached.",
        "100% of limit reached.",
        "Request a limit increase in Service Quotas before you reach the limit.",
    ),
    OPERATIONAL_EXCELLENCE: (
        "Checks {name} with an AWS Config rule. This check is refreshed automatically.",
        "A resource is not compliant with the rule.",
        "Several resources are not compliant with the rule.",
        "Turn the recommended setting on for the flagged resources.",
    ),
}


@dataclass(frozen=True)
class CheckDefinition:
    check_id: str
    name: str
    category: str
    metadata: tuple[str, ...]
    status: str
    auto_refresh: bool = False
    has_summary: bool = True

    def to_api(self) -> dict[str, Any]:
        lead, yellow, red, action = DESCRIPTION_PARTS[self.category]
        description = DESCRIPTION.format(lead=lead.format(name=self.name), yellow=yellow, red=red, action=action)
        return {
            "id": self.check_id,
            "name": self.name,
            "category": self.category,
            "description": description,
            "metadata": list(self.metadata),
        }


@dataclass(frozen=True)
class CheckData:
    """What a check found, independent of when it last ran."""

    status: str
    flagged: tuple[dict[str, Any], ...]
    processed: int
    ignored: int
    savings: float | None  # cost-optimizing checks only
    savings_percent: float | None

    @property
    def flagged_count(self) -> int:
        return sum(1 for r in self.flagged if not r["isSuppressed"])

    @property
    def suppressed_count(self) -> int:
        return sum(1 for r in self.flagged if r["isSuppressed"])

    def resources_summary(self) -> dict[str, int]:
        return {
            "resourcesProcessed": self.processed,
            "resourcesFlagged": self.flagged_count,
            "resourcesIgnored": self.ignored,
            "resourcesSuppressed": self.suppressed_count,
        }

    def category_summary(self) -> dict[str, Any]:
        if self.savings is None:
            return {}
        return {
            "costOptimizing": {
                "estimatedMonthlySavings": self.savings,
                "estimatedPercentMonthlySavings": self.savings_percent or 0.0,
            }
        }


@dataclass
class RefreshState:
    requested_at: datetime


def built_in_checks() -> list[CheckDefinition]:
    return [
        CheckDefinition(check_id, name, category, columns, status, AUTO in flags, NO_SUMMARY not in flags)
        for check_id, category, name, columns, status, flags in BUILT_IN
    ]


def synthesized_checks(count: int, taken_ids: Iterable[str]) -> list[CheckDefinition]:
    """`count` more checks named after real services, for benchmarks with big accounts."""
    rng = random.Random("synthetic-trusted-advisor-checks")
    used = set(taken_ids)
    services = [s.name for s in catalog.services() if s.code not in catalog.NON_SERVICE_CODES]
    statuses, weights = zip(*SYNTHETIC_STATUS_WEIGHTS, strict=True)
    checks: list[CheckDefinition] = []
    round_number = 0
    while len(checks) < count:
        for index, service in enumerate(services):
            if len(checks) >= count:
                break
            category = CATEGORIES[(index + round_number) % len(CATEGORIES)]
            aspects = SYNTHETIC_ASPECTS[category]
            aspect = aspects[(index // len(CATEGORIES) + round_number) % len(aspects)]
            suffix = f" ({round_number + 1})" if round_number >= len(aspects) else ""
            check_id = _new_check_id(rng, used)
            checks.append(
                CheckDefinition(
                    check_id=check_id,
                    name=f"{service} {aspect}{suffix}",
                    category=category,
                    metadata=SYNTHETIC_COLUMNS.get(category, SYNTHETIC_DEFAULT_COLUMNS),
                    status=rng.choices(statuses, weights)[0],
                    auto_refresh=category == OPERATIONAL_EXCELLENCE,
                )
            )
        round_number += 1
    return checks


def _new_check_id(rng: random.Random, used: set[str]) -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        check_id = "".join(rng.choice(alphabet) for _ in range(10))
        if check_id not in used:
            used.add(check_id)
            return check_id


def _interleaved(checks: list[CheckDefinition]) -> list[CheckDefinition]:
    """Round-robin over categories, so the first n checks still cover every category."""
    by_category = {category: [c for c in checks if c.category == category] for category in CATEGORIES}
    ordered: list[CheckDefinition] = []
    while any(by_category.values()):
        for category in CATEGORIES:
            if by_category[category]:
                ordered.append(by_category[category].pop(0))
    return ordered


# Generated results ----------------------------------------------------------------------------


@dataclass
class RowContext:
    """What the cells of one flagged resource share, so the columns agree with each other."""

    check: CheckDefinition
    status: str
    region: str
    name: str
    savings: float
    limit: int
    usage: int
    when: datetime


def generate_data(check: CheckDefinition, status: str, epoch: datetime) -> CheckData:
    rng = random.Random(f"{check.check_id}:{status}")
    is_cost = check.category == COST
    if status == "not_available" or not check.has_summary:
        return CheckData("not_available", (), 0, 0, 0.0 if is_cost else None, 0.0 if is_cost else None)
    rows = [_flagged_resource(check, status, rng, epoch) for _ in range(_flagged_rows(check, status, rng))]
    savings = round(sum(r.pop("_savings") for r in rows if not r["isSuppressed"]), 2) if is_cost else None
    for row in rows:
        row.pop("_savings", None)
    percent = round(rng.uniform(3, 35), 1) if savings else (0.0 if is_cost else None)
    processed = len(rows) + rng.randint(0, 40)
    ignored = rng.choice((0, 0, 0, 1, 2))
    return CheckData(status, tuple(rows), processed, ignored, savings, percent)


def _flagged_rows(check: CheckDefinition, status: str, rng: random.Random) -> int:
    if not check.metadata or status == "ok":
        return 0
    return rng.randint(2, 9) if status == "error" else rng.randint(1, 6)


def _flagged_resource(check: CheckDefinition, status: str, rng: random.Random, epoch: datetime) -> dict[str, Any]:
    # A red check lists some yellow resources too; a yellow one only yellow ones.
    row_status = "warning" if status == "error" and rng.random() < 0.3 else status
    limit = rng.choice((5, 20, 100, 250, 1000, 5000))
    usage_share = rng.uniform(1.0, 1.1) if row_status == "error" else rng.uniform(0.8, 0.99)
    ctx = RowContext(
        check=check,
        status=row_status,
        region=rng.choice(REGIONS),
        name=f"{rng.choice(RESOURCE_NAMES)}-{rng.randint(1, 40)}",
        savings=round(rng.uniform(4, 900), 2),
        limit=limit,
        usage=max(1, int(limit * usage_share)),
        when=epoch - timedelta(days=rng.randint(1, 400), minutes=rng.randint(0, 1440)),
    )
    return {
        "status": row_status,
        "region": ctx.region,
        "resourceId": "".join(rng.choice(ID_ALPHABET) for _ in range(43)),
        "isSuppressed": rng.random() < 0.12,
        "metadata": [_cell(column, rng, ctx) for column in check.metadata],
        "_savings": ctx.savings,
    }


ID_ALPHABET = string.ascii_letters + string.digits + "-_"
RESOURCE_NAMES = (
    "prod-web",
    "staging-api",
    "analytics",
    "batch-worker",
    "legacy-app",
    "payments",
    "search",
    "build-agent",
    "reporting",
    "edge-proxy",
)
INSTANCE_TYPES = ("t3.micro", "t3.large", "m5.xlarge", "m6i.2xlarge", "c5.4xlarge", "r5.large")
DB_INSTANCE_TYPES = ("db.t3.medium", "db.m5.large", "db.r6g.xlarge")
REASONS = {
    "error": ("No snapshot in the last 30 days", "Open to 0.0.0.0/0", "Limit reached", "Deprecated runtime"),
    "warning": ("Snapshot older than 7 days", "Low utilization", "Single Availability Zone", "Approaching limit"),
    "ok": ("Compliant",),
}
YES_NO_WORDS = (
    "enabled",
    "allows",
    "multi-az",
    "exists",
    "optimized",
    "versioning",
    "owner",
    "associated",
    "health check",
    "logging status",
    "uppercase",
    "lowercase",
    "number",
    "non-alphanumeric",
    "password policy",
)
NUMBER_WORDS = (
    "#",
    "number",
    "count",
    "days",
    "ttl",
    "size",
    "(gb)",
    "iops",
    "invokes",
    "term",
    "lookback",
    "months",
    "commitment",
    "zone ",
    "active tunnels",
    "millisecond",
)


def _hex(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))


def _upper(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(length))


def _identifier(column: str, rng: random.Random, ctx: RowContext) -> str | None:
    prefixes = {
        "instance id": "i-",
        "volume id": "vol-",
        "snapshot id": "snap-",
        "security group id": "sg-",
        "vpc id": "vpc-",
        "vpn id": "vpn-",
        "virtual private gateway": "vgw-",
        "customer gateway": "cgw-",
    }
    for key, prefix in prefixes.items():
        if column.startswith(key):
            return prefix + _hex(rng, 17)
    if column == "vpc":
        return "vpc-" + _hex(rng, 8)
    if column.startswith(("access key", "access key id")):
        return "AKIA" + _upper(rng, 16)
    if column == "hosted zone id":
        return "Z" + _upper(rng, 13)
    if column == "distribution id":
        return "E" + _upper(rng, 13)
    if column == "reserved instance id":
        return f"{_hex(rng, 8)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 12)}"
    if column in ("function arn", "resource", "workload arn"):
        return f"arn:aws:lambda:{ctx.region}:123456789012:function:{ctx.name}"
    return None


def _cell(column_name: str, rng: random.Random, ctx: RowContext) -> str | None:
    """One metadata value, shaped by its column heading (the Excel download's columns)."""
    column = column_name.lower()
    if column == "status":
        return TRAFFIC_LIGHT.get(ctx.status, "Green")
    if column.startswith("ignored") or column == "last delivery error":
        return None  # the real API leaves empty cells null
    if column.startswith("region/az") or column == "zone":
        return ctx.region + rng.choice("abc")
    if column == "region name":
        return REGION_NAMES[ctx.region]
    if column.startswith("region"):
        return ctx.region
    identifier = _identifier(column, rng, ctx)
    if identifier is not None:
        return identifier
    return _described_cell(column, rng, ctx)


def _described_cell(column: str, rng: random.Random, ctx: RowContext) -> str | None:
    if column == "service":
        return next((s for s in LIMIT_SERVICES if ctx.check.name.startswith(s)), ctx.check.name.split()[0])
    if column == "limit name":
        return ctx.check.name
    if column == "limit amount":
        return str(ctx.limit)
    if column == "current usage":
        return str(ctx.usage)
    if any(word in column for word in ("savings", "cost", "usd", "upfront")):
        return f"${ctx.savings if 'saving' in column else rng.uniform(10, 2000):,.2f}"
    if column.startswith(("number of", "#")):
        return str(rng.randint(1, 14))
    if "i/o" in column:
        return f"{rng.uniform(0.1, 9):.1f} MB"
    if any(word in column for word in ("utilization", "rate", "percentage", "ratio")):
        return f"{rng.uniform(0.5, 99):.1f}%"
    if any(word in column for word in ("date", "time", "rotated", "deadline")):
        return format_seconds(ctx.when)
    return _text_cell(column, rng, ctx)


def _text_cell(column: str, rng: random.Random, ctx: RowContext) -> str | None:
    if column.endswith("age"):
        return f"{rng.randint(8, 400)} days"
    if any(word in column for word in NUMBER_WORDS):
        return str(rng.randint(0, 120))
    if column == "instance type":
        return rng.choice(DB_INSTANCE_TYPES if "DB" in ctx.check.name else INSTANCE_TYPES)
    if column == "volume type":
        return rng.choice(("gp2", "gp3", "io1", "st1", "standard"))
    if column in ("protocol",):
        return "tcp"
    if "port" in column:
        return rng.choice(("22", "3389", "1433", "3306", "5432", "80,443"))
    if column == "ip address":
        return f"52.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if column == "ip range":
        return "0.0.0.0/0"
    if column == "runtime":
        return rng.choice(("python3.7", "nodejs14.x", "python3.8", "go1.x"))
    if column == "reason":
        return rng.choice(REASONS.get(ctx.status, REASONS["ok"]))
    if column == "aws config rule":
        return "-".join(ctx.check.name.lower().split()[:5])
    if column == "input parameters":
        return "{}"
    if "bucket" in column or column == "target name":
        return f"acme-{ctx.name}-{_hex(rng, 4)}"
    if "hosted zone name" in column or "record set name" in column or "domain name" in column:
        return f"{ctx.name}.example.com."
    if any(word in column for word in YES_NO_WORDS):
        return rng.choice(("Yes", "No"))
    return ctx.name


# The service ----------------------------------------------------------------------------------


class TrustedAdvisor:
    """The account's Trusted Advisor. Refresh progress is read off the clock, no timers needed."""

    enqueued_seconds = 1.0
    processing_seconds = 3.0

    def __init__(
        self, clock: Clock, on_change: Callable[[], None] | None = None, lock: threading.RLock | None = None
    ) -> None:
        self.clock = clock
        self._on_change = on_change or (lambda: None)
        self._lock = lock or threading.RLock()
        self._epoch = clock.now().replace(microsecond=0)
        self._built_in = built_in_checks()
        self._check_count: int | None = None
        self._overrides: dict[str, str] = {}
        self._refreshes: dict[str, RefreshState] = {}
        self._data: dict[str, CheckData] = {}
        self._select(None)

    # Control -----------------------------------------------------------------------------------

    def set_check_count(self, count: int | None) -> None:
        """None (or the built-in count) restores the realistic built-in set."""
        if count is not None and count < 0:
            raise ValueError("check count must be >= 0")
        with self._lock:
            self._select(count)
        self._on_change()

    def set_status(self, check_id: str, status: str) -> None:
        """Tests: make a check turn red or recover, to follow changes between digests."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        with self._lock:
            self.definition(check_id)
            self._overrides[check_id] = status
            self._data.pop(check_id, None)
        self._on_change()

    @property
    def checks(self) -> list[CheckDefinition]:
        with self._lock:
            return list(self._checks)

    def _select(self, count: int | None) -> None:
        self._check_count = count
        if count is None or count == len(self._built_in):
            checks = list(self._built_in)
        elif count < len(self._built_in):
            chosen = {c.check_id for c in _interleaved(self._built_in)[:count]}
            checks = [c for c in self._built_in if c.check_id in chosen]
        else:
            extra = synthesized_checks(count - len(self._built_in), (c.check_id for c in self._built_in))
            checks = self._built_in + extra
        self._checks = checks
        self._by_id = {c.check_id: c for c in checks}
        self._data = {}

    # Operations --------------------------------------------------------------------------------

    def describe_checks(self) -> dict[str, Any]:
        return {"checks": [c.to_api() for c in self.checks]}

    def summaries(self, check_ids: list[str]) -> dict[str, Any]:
        with self._lock:
            definitions = [self.definition(check_id) for check_id in check_ids]
            return {"summaries": [self._summary(c) for c in definitions if c.has_summary]}

    def result(self, check_id: str) -> dict[str, Any]:
        with self._lock:
            check = self.definition(check_id)
            data = self._data_for(check)
            return {
                "result": {
                    "checkId": check.check_id,
                    "timestamp": self._timestamp(check),
                    "status": data.status,
                    "resourcesSummary": data.resources_summary(),
                    "categorySpecificSummary": data.category_summary(),
                    "flaggedResources": [dict(r) for r in data.flagged],
                }
            }

    def refresh(self, check_id: str) -> dict[str, Any]:
        with self._lock:
            check = self._refreshable(check_id)
            now = self.clock.now()
            current = self._refreshes.get(check_id)
            # Within five minutes of the last request the service just reports where it stands.
            if current is None or self._millis_until_refreshable(current, now) == 0:
                self._refreshes[check_id] = RefreshState(now)
                changed = True
            else:
                changed = False
            status = self._refresh_status(check, now)
        if changed:
            self._on_change()
        return {"status": status}

    def refresh_statuses(self, check_ids: list[str]) -> dict[str, Any]:
        with self._lock:
            checks = [self._refreshable(check_id) for check_id in check_ids]
            now = self.clock.now()
            return {"statuses": [self._refresh_status(check, now) for check in checks]}

    # Internals ---------------------------------------------------------------------------------

    def definition(self, check_id: str) -> CheckDefinition:
        check = self._by_id.get(check_id)
        if check is None:
            # What the real service answers for IDs it does not know (e.g. retired checks).
            raise invalid_parameter(f"Unknown ID: {check_id}")
        return check

    def _refreshable(self, check_id: str) -> CheckDefinition:
        check = self.definition(check_id)
        if check.auto_refresh:
            raise invalid_parameter(f"[UNREFRESHABLE_CHECK_ID_ERROR] Check {check_id} is not refreshable.")
        return check

    def _data_for(self, check: CheckDefinition) -> CheckData:
        data = self._data.get(check.check_id)
        if data is None:
            status = self._overrides.get(check.check_id, check.status)
            data = generate_data(check, status, self._epoch)
            self._data[check.check_id] = data
        return data

    def _summary(self, check: CheckDefinition) -> dict[str, Any]:
        data = self._data_for(check)
        return {
            "checkId": check.check_id,
            "timestamp": self._timestamp(check),
            "status": data.status,
            "hasFlaggedResources": bool(data.flagged),
            "resourcesSummary": data.resources_summary(),
            "categorySpecificSummary": data.category_summary(),
        }

    def _timestamp(self, check: CheckDefinition) -> str:
        refresh = self._refreshes.get(check.check_id)
        done = self.enqueued_seconds + self.processing_seconds
        if refresh is not None and (self.clock.now() - refresh.requested_at).total_seconds() >= done:
            return format_seconds(refresh.requested_at + timedelta(seconds=done))
        # Auto-refreshed checks ran minutes ago; others anywhere in the last day.
        spread = 30 if check.auto_refresh else 1440
        minutes = random.Random(check.check_id).randint(1, spread)
        return format_seconds(self._epoch - timedelta(minutes=minutes))

    def _refresh_status(self, check: CheckDefinition, now: datetime) -> dict[str, Any]:
        refresh = self._refreshes.get(check.check_id)
        if refresh is None:
            return {"checkId": check.check_id, "status": "none", "millisUntilNextRefreshable": 0}
        elapsed = (now - refresh.requested_at).total_seconds()
        if elapsed < self.enqueued_seconds:
            status = "enqueued"
        elif elapsed < self.enqueued_seconds + self.processing_seconds:
            status = "processing"
        else:
            status = "success"
        return {
            "checkId": check.check_id,
            "status": status,
            "millisUntilNextRefreshable": self._millis_until_refreshable(refresh, now),
        }

    @staticmethod
    def _millis_until_refreshable(refresh: RefreshState, now: datetime) -> int:
        remaining = REFRESH_INTERVAL_SECONDS - (now - refresh.requested_at).total_seconds()
        return max(0, int(remaining * 1000))

    # Persistence -------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "check_count": self._check_count,
                "overrides": dict(self._overrides),
                "refreshes": {cid: format_seconds(r.requested_at) for cid, r in self._refreshes.items()},
            }

    def load_json(self, raw: dict[str, Any]) -> None:
        with self._lock:
            self._select(raw.get("check_count"))
            self._overrides = {k: v for k, v in (raw.get("overrides") or {}).items() if v in STATUSES}
            self._refreshes = {}
            for check_id, when in (raw.get("refreshes") or {}).items():
                moment = parse_time(when)
                if moment is not None:
                    self._refreshes[check_id] = RefreshState(moment)
