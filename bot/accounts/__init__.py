"""Several AWS accounts from one bot: the accounts file, the directory of who may use which, a session
and a gateway per account through sts:AssumeRole, and `check` per account."""
