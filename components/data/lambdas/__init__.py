"""Lambda functions the data tier deploys. Each module is the whole function: standard library
and boto3 only (what the Lambda Python runtime provides), no import of the program."""
