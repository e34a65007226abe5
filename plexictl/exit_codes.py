"""One exit-code table for every plexictl command, present and future (docs/releasing.md)."""

EXIT_DONE = 0  # done, or nothing to do
EXIT_INVALID = 1  # invalid request or config (usage errors too: argparse's 2 is taken)
EXIT_DATA_LOSS = 2  # a change would replace or delete stateful data, or unprotect it (diff)
EXIT_CANNOT_DEPLOY = 3  # the edit is fine but cannot be deployed here and now
EXIT_ROLLED_BACK = 4  # rolled back or aborted by analysis
EXIT_CODES = """exit codes (every command):
  0  done, or nothing to do
  1  invalid request or config (nothing was changed)
  2  data-loss risk: a stateful resource would be replaced or deleted, or lose its protection (diff)
  3  cannot deploy here and now: nothing was deployed (no Pulumi CLI, outside the
     deployment window without --emergency); notify: the message was not delivered
  4  rolled back or aborted by analysis"""
