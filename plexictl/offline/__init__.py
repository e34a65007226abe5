"""The offline engine: the real `__main__.py` under Pulumi's mock runtime, without a cloud account
or the Pulumi CLI. `plexictl render`, `diff` and the release commands see a stack through it, and
so do the tests and the benchmark.

- `stack_files`: a stack's config as the Pulumi CLI would pass it (strict YAML, project defaults,
  `secure:` placeholders);
- `rendering`: what a run records (`Rendering`, `Resource`) and how secrets are masked;
- `mocks`: what the providers would compute (ARNs, endpoints, generated names), per resource type;
- `recording`: the monitor that records every registration with its resource options;
- `runner`: `run_program` (one stack, this process) and `run` (any function that declares resources);
- `stack_references`: `pulumi.StackReference` offline, another stack's outputs rendered from its
  own stack file in the same root (a DR standby reads its primary's);
- `program_imports` and `parallel`: many renderings at once, in forked children that share the
  provider SDKs imported once by their parent, each revision's program imported from its own root;
- `memo`: renderings shared between identical runs of one process (opt-in: the test session).
- `terraform_plan`: a rendering's AWS resources as a Terraform plan (`terraform show -json`), for
  checkov's `terraform_plan` framework and other tools that read Terraform.
"""

from plexictl.offline.memo import share_renderings
from plexictl.offline.parallel import Failure, RenderJob, render_jobs
from plexictl.offline.rendering import UNKNOWN, Rendering, Resource, is_secret, mask_secrets
from plexictl.offline.runner import run, run_program
from plexictl.offline.stack_files import (
    ROOT,
    StackFileError,
    project_file,
    read_stack_file,
    stack_config,
    stack_file_path,
    stack_names,
)

__all__ = [
    "ROOT",
    "UNKNOWN",
    "Failure",
    "RenderJob",
    "Rendering",
    "Resource",
    "StackFileError",
    "is_secret",
    "mask_secrets",
    "project_file",
    "read_stack_file",
    "render_jobs",
    "run",
    "run_program",
    "share_renderings",
    "stack_config",
    "stack_file_path",
    "stack_names",
]
