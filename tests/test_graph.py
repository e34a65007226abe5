"""`plexictl render --graph`: the Mermaid picture of a stack (issue #17), in the docs and in PRs.

The docs' prod diagram is rendered from the pinned release state (tests/release_state.py), not
from today's Pulumi.prod.yaml: operators edit its release block daily. Regenerate it with
`.venv/bin/python -m tests.test_graph --write` (the failing test says so)."""

from __future__ import annotations

import re
import subprocess
import sys

from plexictl import graph
from plexictl.diff import diff
from plexictl.diff_report import format_markdown
from plexictl.offline import ROOT
from tests.conftest import render_edited, rendered
from tests.release_state import project_copy

DESIGN = ROOT / "docs" / "design.md"
BEGIN, END = "<!-- stack-graph:prod:begin -->", "<!-- stack-graph:prod:end -->"
REGENERATE = ".venv/bin/python -m tests.test_graph --write"


def edges(text: str) -> dict[tuple[str, str], str]:
    """`source -->|"label"| target` lines as (source, target) -> label."""
    found = re.findall(r"^\s+(\S+) -->(?:\|\"([^\"]*)\"\|)? (\S+)$", text, re.MULTILINE)
    return {(source, target): label for source, label, target in found}


def protected_ids(text: str) -> set[str]:
    (line,) = [line for line in text.splitlines() if line.strip().startswith("class ") and line.endswith(" protected")]
    return set(line.split()[1].split(","))


def test_a_canary_stack_shows_both_tracks_with_their_weights_and_the_data_they_use():
    text = graph.mermaid(rendered("prod"))  # the pinned canary: 10%, with a header route
    flow = edges(text)
    vs = "n_VirtualService_web_virtual_service"
    assert flow[(vs, "n_Deployment_web_stable_deployment")] == "90%"
    assert flow[(vs, "n_Deployment_web_canary_deployment")] == "10% + header/host match"
    assert flow[("n_Service_web_service", vs)] == ""
    assert flow[("n_Ingress_web_ingress", "n_Service_web_service")] == "app.plexichat.com"
    assert flow[("n_WebAcl_web_waf", "n_Ingress_web_ingress")] == "load balancer"
    for track in ("web_stable", "web_canary", "worker_stable"):
        for data in ("n_Instance_database_primary", "n_ReplicationGroup_cache_group", "n_Bucket_backups_bucket"):
            assert (f"n_Deployment_{track}_deployment", data) in flow
    assert 'subgraph c_WorkloadTrack_web_canary["WorkloadTrack web-canary"]' in text


def test_protected_resources_are_marked_and_nothing_else_is():
    text = graph.mermaid(rendered("prod"))
    marked = protected_ids(text)
    assert {"n_Instance_database_primary", "n_Instance_database_replica_1", "n_ReplicationGroup_cache_group"} <= marked
    assert "n_Bucket_backups_bucket" in marked and "n_Deployment_web_stable_deployment" not in marked
    assert '"🔒 Instance<br/>database-primary"' in text and '"Deployment<br/>plexichat-web-stable"' in text
    # Protected resources off the request path are listed in their component's box.
    assert "p_Database_database" in marked and "Key database-key" in text
    unprotected = render_edited("dev", lambda config: None)
    assert "🔒 Instance" not in graph.mermaid(unprotected)  # dev's database is not protected


def test_a_blue_green_stack_routes_all_to_the_live_colour_and_previews_the_other():
    flow = edges(graph.mermaid(rendered("staging")))  # pinned: blue live, green in preview
    vs = "n_VirtualService_web_virtual_service"
    assert flow[(vs, "n_Deployment_web_blue_deployment")] == "100%"
    assert flow[(vs, "n_Deployment_web_green_deployment")] == "0% + header/host match"


def test_the_pr_diff_embeds_the_diagram_of_a_changed_stack_only():
    def shift(config):
        config["plexichat:release"]["canary"]["weight"] = 25

    before, after = rendered("prod"), render_edited("prod", shift)
    changed, unchanged = diff(before, after, "prod"), diff(rendered("dev"), rendered("dev"), "dev")
    graphs = {"prod": graph.mermaid(after)}
    markdown = format_markdown([unchanged, changed], graphs=graphs)
    prod_section = markdown.split("<summary><b>prod</b>", 1)[1]
    block = prod_section.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert block == graphs["prod"]
    assert '"75%"' in block and '"25% + header/host match"' in block
    assert markdown.count("```mermaid") == 1  # dev did not change: no picture


def test_the_diff_command_passes_the_changed_stacks_diagrams():
    source = (ROOT / "plexictl" / "__main__.py").read_text()
    assert "graph.mermaid(r) for d in diffs if not d.empty" in source and "graphs=graphs" in source


def docs_block() -> str:
    return f"{BEGIN}\n```mermaid\n{graph.mermaid(rendered('prod'))}```\n{END}"


def test_the_docs_embed_the_current_prod_diagram():
    text = DESIGN.read_text()
    assert BEGIN in text and END in text, f"docs/design.md lost its diagram markers; run {REGENERATE}"
    current = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert current == docs_block(), f"docs/design.md's prod diagram is out of date: run {REGENERATE}"


def test_render_graph_writes_the_same_diagram_in_another_process(tmp_path):
    """The command's file equals this process's rendering: ids and order do not depend on the run."""
    (tmp_path / "project").mkdir()
    project = project_copy(tmp_path / "project")  # stack files at their pinned release
    out = tmp_path / "graph.mmd"
    command = ["--project-dir", str(project), "render", "--stack", "prod", "--out", str(tmp_path / "out")]
    result = subprocess.run(
        [sys.executable, "-m", "plexictl", *command, "--graph", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text() == graph.mermaid(rendered("prod"))


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    text = DESIGN.read_text()
    DESIGN.write_text(text[: text.index(BEGIN)] + docs_block() + text[text.index(END) + len(END) :])
    print(f"updated the prod diagram in {DESIGN}")
