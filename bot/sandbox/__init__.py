"""The AWS Support sandbox: an emulator of the AWS Support API that real boto3 talks to over HTTP.

Used by `--sandbox` (try the whole bot without a Business support plan) and by the tests.

`SandboxServer(accounts=N)` (`BOT_SANDBOX_ACCOUNTS=N`, `python -m bot.sandbox --accounts N`) emulates N
AWS accounts on the same port: STS (AssumeRole, GetCallerIdentity; query protocol, XML), Organizations
(ListAccounts; JSON 1.1) and AWS Support per account, told apart by the access key that signed each
request. Aliases `sandbox`, `sandbox-2`, …; `server.accounts.account("sandbox-2")` is that account's
sandbox, `server.accounts.deny_assume_role("sandbox-2")` makes it unreachable (see bot.sandbox.accounts).
"""

from bot.sandbox.server import SandboxServer

__all__ = ["SandboxServer"]
