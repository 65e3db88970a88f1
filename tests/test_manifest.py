"""manifest.yml grants every scope the bot's Web API calls and events need, each with its reason (issue 8, defect 14).

The map from Web API method to bot scope is Slack's documentation (docs.slack.dev/reference/methods),
written down here; the methods are found in the bot's code, so a new call without its scope fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import slack_sdk

ROOT = Path(__file__).resolve().parent.parent
# Web API method (slack_sdk's name) -> the bot scopes it needs; () for methods that need none.
SCOPES_OF_METHOD: dict[str, tuple[str, ...]] = {
    "auth_test": (),
    "chat_postMessage": ("chat:write",),
    "chat_postEphemeral": ("chat:write",),
    "chat_update": ("chat:write",),
    "chat_delete": ("chat:write",),
    # Case threads live in public and private channels alike.
    "conversations_history": ("channels:history", "groups:history"),
    "conversations_replies": ("channels:history", "groups:history"),
    "conversations_join": ("channels:join",),
    "files_info": ("files:read",),
    "files_upload_v2": ("files:write",),
    "files_getUploadURLExternal": ("files:write",),
    "files_completeUploadExternal": ("files:write",),
    "reactions_add": ("reactions:write",),
    "users_info": ("users:read",),
    "views_open": (),
    "views_update": (),
    "views_push": (),
}
# What Slack needs for the rest of the app: the slash command, the message events it subscribes to,
# the private file downloads (url_private with the bot token) and message metadata read back.
OTHER_NEEDS = {
    "commands": "the /aws-support slash command",
    "channels:history": "message.channels events",
    "groups:history": "message.groups events",
    "files:read": "downloading url_private files",
    "metadata.message:read": "conversations.history include_all_metadata",
}


def bot_scopes() -> dict[str, str]:
    """scope -> the reason written beside it, from oauth_config.scopes.bot of manifest.yml."""
    text = (ROOT / "manifest.yml").read_text()
    section = re.search(r"^oauth_config:\n  scopes:\n    bot:\n((?:      - .*\n)+)", text, re.MULTILINE)
    assert section, "manifest.yml has no oauth_config.scopes.bot list"
    scopes = {}
    for line in section.group(1).splitlines():
        match = re.match(r"\s+- ([\w:.]+)\s*(?:#\s*(.*))?$", line)
        assert match, line
        scopes[match.group(1)] = (match.group(2) or "").strip()
    return scopes


def web_api_methods_called() -> set[str]:
    client_methods = {name for name in dir(slack_sdk.WebClient) if not name.startswith("_")} - {"api_call"}
    source = "\n".join(path.read_text() for path in (ROOT / "bot").rglob("*.py"))
    return {name for name in re.findall(r"\.(\w+)\(", source) if name in client_methods}


def test_every_web_api_call_of_the_bot_is_covered_by_a_scope() -> None:
    called = web_api_methods_called()
    assert {"chat_postMessage", "conversations_join", "reactions_add"} <= called  # the scan finds the calls
    unknown = called - set(SCOPES_OF_METHOD)
    assert not unknown, f"add these methods' scopes (Slack's docs) to SCOPES_OF_METHOD: {sorted(unknown)}"
    needed = {scope for method in called for scope in SCOPES_OF_METHOD[method]} | set(OTHER_NEEDS)
    assert sorted(needed - set(bot_scopes())) == []


def test_every_scope_says_why_and_none_is_unused() -> None:
    scopes = bot_scopes()
    used = {scope for scopes_ in SCOPES_OF_METHOD.values() for scope in scopes_} | set(OTHER_NEEDS)
    assert [scope for scope, reason in scopes.items() if not reason] == []
    assert sorted(set(scopes) - used) == []
