"""The offline engine's own promises (plexictl/offline): renderings in forked children equal those
of this process, each revision runs its own program, one failure stays one job's, the memo shares
only what is the same, and the import scan finds what the program uses."""

from __future__ import annotations

import dataclasses
import pathlib
import sys

import pytest

from plexictl.offline import (
    UNKNOWN,
    Failure,
    Rendering,
    RenderJob,
    memo,
    program_imports,
    render_jobs,
    run_program,
    stack_config,
    stack_references,
)

PROGRAM = """
import pulumi
from {package}.things import NAME

mode = pulumi.Config().get("mode") or "fine"
if mode == "invalid":
    raise pulumi.RunError("plexichat:mode: must be fine")
if mode == "crash":
    raise ValueError("half-written refactoring")
pulumi.CustomResource("plexichat:test:Thing", NAME, {"mode": mode})
pulumi.export("name", NAME)
"""


def program(root: pathlib.Path, name: str, package: str = "components") -> pathlib.Path:
    """A tiny project whose own package (`components`, as this checkout's) names its one resource."""
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (root / package / "things.py").write_text(f"NAME = {name!r}\n")
    (root / "__main__.py").write_text(PROGRAM.replace("{package}", package))
    (root / "Pulumi.yaml").write_text("name: plexichat\nruntime: python\n")
    (root / "Pulumi.dev.yaml").write_text("config: {}\n")
    return root


def config(mode: str) -> dict[str, str]:
    return {"plexichat:mode": mode}


def test_each_revision_renders_its_own_program_and_this_process_keeps_its_own(tmp_path):
    ours = sys.modules["components"].__file__
    a, b = program(tmp_path / "a", "thing-a"), program(tmp_path / "b", "thing-b")
    results = render_jobs([RenderJob("dev", a), RenderJob("dev", b), RenderJob("dev", a, config=config("other"))])
    assert [[r.name for r in result.resources] for result in results] == [["thing-a"], ["thing-b"], ["thing-a"]]
    assert [result.outputs for result in results] == [{"name": "thing-a"}, {"name": "thing-b"}, {"name": "thing-a"}]
    assert sys.modules["components"].__file__ == ours  # the program of this checkout, still


def test_a_failing_job_is_reported_as_its_own_and_the_others_render(tmp_path):
    root = program(tmp_path, "thing")
    fine, invalid, crash = render_jobs(
        [RenderJob("dev", root, config=config(mode)) for mode in ("fine", "invalid", "crash")]
    )
    assert [r.inputs for r in fine.resources] == [{"mode": "fine"}]
    assert invalid == Failure("plexichat:mode: must be fine", invalid_config=True)
    assert isinstance(crash, Failure) and not crash.invalid_config
    assert crash.message.splitlines()[-1] == "ValueError: half-written refactoring"


def test_a_render_in_a_child_equals_one_in_this_process(monkeypatch):
    monkeypatch.setattr(memo, "_renderings", None)  # render twice, for real
    config, secret_keys = stack_config("dev")
    (forked,) = render_jobs([RenderJob("dev", config=config, secret_keys=secret_keys)])
    here = run_program("dev", config=config, secret_keys=secret_keys)
    assert dataclasses.asdict(forked) == dataclasses.asdict(here)


def test_the_memo_shares_a_rendering_only_for_the_same_program_and_config(tmp_path, monkeypatch):
    monkeypatch.setattr(memo, "_renderings", {})
    root = program(tmp_path / "a", "thing", package="memo_things")  # this process renders it
    first = run_program("dev", root=root, config=config("fine"))
    assert run_program("dev", root=root, config=config("fine")) is first
    assert render_jobs([RenderJob("dev", root, config=config("fine"))]) == [first]
    assert run_program("dev", root=root, config=config("other")) is not first
    assert run_program("dev", root=root, config=config("fine"), preview=True) is not first
    copy = program(tmp_path / "b", "thing", package="memo_things")  # the same program elsewhere: shared
    assert run_program("dev", root=copy, config=config("fine")) is first
    (copy / "memo_things" / "things.py").write_text("NAME = 'thing'  # edited\n")
    assert memo.lookup(memo.key(copy, "dev", False, config("fine"), None)) is None
    for _ in range(2):  # an error is not shared: it is raised each time
        assert render_jobs([RenderJob("dev", root, config=config("invalid"))])[0].invalid_config


def test_the_import_scan_finds_the_programs_packages_and_what_it_reads_from_the_sdks():
    from plexictl.offline import ROOT

    imports = program_imports.scan(ROOT)
    assert imports.local == ("components",)
    assert "components.platform" in imports.entry_modules
    assert {("pulumi_aws", "rds", "Instance"), ("pulumi_kubernetes", "apps", "v1", "Deployment")} <= set(
        imports.attribute_paths
    )
    assert not [path for path in imports.attribute_paths if path[0] in ("components", "plexictl", "tests")]


@pytest.mark.parametrize(
    "source,expected",
    [
        ("import pulumi_aws as aws\naws.rds.Instance('x')\n", ("pulumi_aws", "rds", "Instance")),
        ("from pulumi_kubernetes import apps\napps.v1.Deployment\n", ("pulumi_kubernetes", "apps", "v1", "Deployment")),
        ("from pulumi_aws import (\n    wafv2,  # the WAF\n)\nwafv2.WebAcl\n", ("pulumi_aws", "wafv2", "WebAcl")),
        ("import pulumi.runtime\npulumi.runtime.config\n", ("pulumi", "runtime", "config")),
    ],
)
def test_the_import_scan_reads_each_form_of_import(tmp_path, source, expected):
    (tmp_path / "__main__.py").write_text(source)
    assert expected in program_imports.scan(tmp_path).attribute_paths


# --- pulumi.StackReference -----------------------------------------------------------------------

PAIR = """
import pulumi
import pulumi_aws as aws

config = pulumi.Config()
primary = config.get("primary")
if primary is None:  # the primary: a key whose ARN only `up` knows
    key = aws.kms.Key("key")
    pulumi.export("source", {"arn": key.arn, "version": config.get("version") or "1"})
else:  # the standby: `stack`, `org/stack` or `org/project/stack`, or just the stack's name
    name = primary if "/" in primary else f"{pulumi.get_organization()}/{pulumi.get_project()}/{primary}"
    source = pulumi.StackReference("primary", stack_name=name).require_output("source")
    pulumi.CustomResource(
        "plexichat:test:Copy", "copy", {"source": source.apply(lambda s: s["arn"]), "version": source["version"]}
    )
    pulumi.export("copied", source)
"""


def pair(root: pathlib.Path, primary_version: str = "1", reference: str = "primary") -> pathlib.Path:
    """A project of two stacks: `primary`, and `standby`, which reads it through a StackReference."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "__main__.py").write_text(PAIR)
    (root / "Pulumi.yaml").write_text("name: plexichat\nruntime: python\n")
    (root / "Pulumi.primary.yaml").write_text(f"config:\n  plexichat:version: '{primary_version}'\n")
    (root / "Pulumi.standby.yaml").write_text(f"config:\n  plexichat:primary: {reference}\n")
    return root


def copied(rendering) -> dict:
    (copy,) = [r for r in rendering.resources if r.name == "copy"]
    return copy.inputs


KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/"


def test_a_stack_reference_reads_the_outputs_the_referenced_stack_file_renders(tmp_path):
    """As after `pulumi up` of both: the standby sees the primary's computed values; in a preview
    what the primary computes in the cloud stays unknown, as `pulumi preview` shows it."""
    root = pair(tmp_path)
    up = run_program("standby", root=root)
    assert copied(up)["source"].startswith(KEY_ARN) and copied(up)["version"] == "1"
    assert up.outputs["copied"] == run_program("primary", root=root).outputs["source"]
    assert set(up.references) == {"primary"}
    preview = run_program("standby", root=root, preview=True)
    assert copied(preview) == {"source": UNKNOWN, "version": UNKNOWN}
    assert set(preview.references) == {"primary"}


@pytest.mark.parametrize("reference", ["primary", "somebody/primary", "organization/plexichat/primary"])
def test_a_stack_reference_takes_every_name_the_cli_accepts(tmp_path, reference):
    assert copied(run_program("standby", root=pair(tmp_path, reference=reference)))["version"] == "1"


@pytest.mark.parametrize(
    "reference,message",
    [
        ("nowhere", "no stack 'nowhere'"),
        ("organization/other-project/primary", "names project 'other-project'"),
        ("standby", "stack references form a cycle: standby -> standby"),
    ],
)
def test_a_reference_that_cannot_be_read_fails_as_a_config_error(tmp_path, reference, message):
    (failure,) = render_jobs([RenderJob("standby", pair(tmp_path, reference=reference))])
    assert isinstance(failure, Failure) and failure.invalid_config
    assert message in failure.message


def test_a_referenced_stack_is_rendered_once_and_its_change_is_seen(tmp_path, monkeypatch):
    """The outputs are kept for the process (also across the memo); a rendering made from an
    older primary is never served again."""
    monkeypatch.setattr(memo, "_renderings", {})
    monkeypatch.setattr(stack_references, "_outputs", {})
    root = pair(tmp_path)
    renders = []
    real = run_program.__globals__["run"]
    monkeypatch.setitem(run_program.__globals__, "run", lambda *a, **k: renders.append(a[1]) or real(*a, **k))
    first = run_program("standby", root=root)
    assert renders == ["standby", "primary", "standby"]  # found missing, rendered, run again
    assert run_program("standby", root=root) is first and len(renders) == 3
    (root / "Pulumi.primary.yaml").write_text("config:\n  plexichat:version: '2'\n")
    assert copied(run_program("standby", root=root))["version"] == "2"


def test_stack_references_resolve_in_forked_children_against_their_own_revision(tmp_path):
    """`plexictl diff`: each revision's standby reads that revision's primary."""
    from plexictl import revision

    base, head = pair(tmp_path / "base", "1"), pair(tmp_path / "head", "2")
    renderings = revision.render({"base": base, "head": head}, ["standby", "primary"])
    assert copied(renderings["base"]["standby"])["version"] == "1"
    assert copied(renderings["head"]["standby"])["version"] == "2"
    forked, here = render_jobs([RenderJob("standby", head)])[0], run_program("standby", root=head)
    assert dataclasses.asdict(forked) == dataclasses.asdict(here)


def test_a_batch_renders_a_referenced_stack_once_and_its_reader_waits_for_it(tmp_path, monkeypatch):
    """`diff --all-stacks`: the standby's child does not render the primary a second time; it
    stops at the reference and runs again once the primary's child has rendered it."""
    monkeypatch.setattr(memo, "_renderings", None)  # the engine as the CLI runs it: no memo
    monkeypatch.setattr(stack_references, "_outputs", {})
    log = tmp_path / "runs.log"
    real = run_program.__globals__["run"]

    def logged(*args, **kwargs):
        with log.open("a") as runs:  # a file: the runs happen in forked children
            runs.write(f"{args[1]}\n")
        return real(*args, **kwargs)

    monkeypatch.setitem(run_program.__globals__, "run", logged)
    root = pair(tmp_path / "project")
    standby, primary = render_jobs([RenderJob("standby", root), RenderJob("primary", root)])
    assert isinstance(standby, Rendering) and isinstance(primary, Rendering)
    assert copied(standby)["source"] == primary.outputs["source"]["arn"]
    assert sorted(log.read_text().split()) == ["primary", "standby", "standby"]  # stopped, then ran


def test_a_reader_of_a_stack_that_fails_in_its_batch_reports_that_failure(tmp_path):
    root = pair(tmp_path)
    (root / "Pulumi.primary.yaml").write_text("config: [\n")
    standby, primary = render_jobs([RenderJob("standby", root), RenderJob("primary", root)])
    assert isinstance(primary, Failure) and primary.invalid_config
    assert isinstance(standby, Failure) and standby.invalid_config and "Pulumi.primary.yaml" in standby.message
