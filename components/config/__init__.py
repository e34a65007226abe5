"""The stack configuration contract: every `plexichat:` key, its type, default and allowed range.

The only package that knows the shape of the config. `__main__.py` hands `parse_stack_config` the
raw `{"plexichat:key": "text"}` map the Pulumi CLI passes to the program and gets one validated
`StackSettings`, or one `ConfigError` listing every problem by its config key path
(`plexichat:release.canary.weight`) and what is allowed; nothing is registered before that. The
models are split by domain (release, workloads, cluster, edge, monitoring, data, stack); `base`
holds what they share and `parse` the parser and its error messages. No Pulumi import here.

Keys are camelCase in the stack files (the Pulumi convention) and snake_case in Python.
"""
