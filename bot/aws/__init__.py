"""The one gateway to AWS: every boto3 call, AWS errors turned into messages a person can act on."""
