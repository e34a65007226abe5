"""The docs set stays whole: README.md is the short front door, every relative link in it and in
docs/*.md reaches an existing file (and heading, by GitHub's anchor rule), every command works from
a fresh shell, and the pointers the program prints lead to a page that exists."""

from __future__ import annotations

import collections
import json
import pathlib
import re

import pytest

from components.config.parse import ConfigError, parse_stack_config
from plexictl.offline import ROOT, stack_config
from tests.conftest import stack_file

README = ROOT / "README.md"
RUNBOOK = ROOT / "docs" / "runbook.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"`+[^`]*`+")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def _prose_and_code(page: pathlib.Path) -> tuple[list[str], list[str]]:
    """The page's lines outside fenced code blocks, and the lines inside them."""
    prose, code, fenced = [], [], False
    for line in page.read_text().splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif fenced:
            code.append(line)
        else:
            prose.append(line)
    return prose, code


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text lowercased, punctuation dropped (hyphens
    and underscores kept), each space a hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return "".join(ch for ch in text if ch.isalnum() or ch in " -_").replace(" ", "-")


def anchors(page: pathlib.Path) -> set[str]:
    """Every heading anchor of a Markdown page; a repeated one gets -1, -2, ... as on GitHub."""
    seen: collections.Counter[str] = collections.Counter()
    result = set()
    for line in _prose_and_code(page)[0]:
        if match := _HEADING.match(line):
            slug = anchor(match.group(2))
            result.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
            seen[slug] += 1
    return result


def _links(page: pathlib.Path) -> list[str]:
    prose = "\n".join(_prose_and_code(page)[0])
    return _LINK.findall(_CODE_SPAN.sub("``", prose))


def test_the_readme_is_a_front_door():
    lines = len(README.read_text().splitlines())
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_reaches_a_file_and_heading(page):
    broken = []
    for target in _links(page):
        if _SCHEME.match(target) or target.startswith("//"):
            continue  # an external address: not ours to check offline
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(f"{target}: no such file")
        elif fragment and (resolved.suffix != ".md" or fragment not in anchors(resolved)):
            broken.append(f"{target}: no heading with anchor #{fragment} in {resolved.name}")
    assert not broken, f"{page.relative_to(ROOT)}:\n  " + "\n  ".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_command_runs_without_activating_anything(page):
    """`make demo` installs `plexictl` into .venv: commands say `.venv/bin/plexictl`. A command is
    a line of a code block or a code span with an option; prose may name one (`plexictl diff`)."""
    prose, code = _prose_and_code(page)
    spans = [s.strip("`") for s in _CODE_SPAN.findall("\n".join(prose))]
    commands = code + [span for span in spans if " -" in span]
    needs_activation = [c for c in commands if re.match(r"\s*(\$\s*)?plexictl\s", c) or "python -m plexictl" in c]
    assert not needs_activation, needs_activation


def test_the_anchor_rule_is_githubs():
    assert anchor("PlexichatErrorRatioCritical") == "plexichaterrorratiocritical"
    assert anchor("Data tier runbook (RPO 1 h, RTO 4 h)") == "data-tier-runbook-rpo-1-h-rto-4-h"
    assert anchor("The two NGINX controllers (`plexichat:ingress.controller`)") == (
        "the-two-nginx-controllers-plexichatingresscontroller"
    )
    assert anchor("Deploying from the command line (`--apply`)") == ("deploying-from-the-command-line---apply")


def test_a_config_error_points_to_the_configuration_reference():
    config, secret_keys = stack_config("dev", stack_file=stack_file("dev"))
    kubernetes = {**json.loads(config["plexichat:kubernetes"]), "ingresNamespace": "x"}  # a typo
    with pytest.raises(ConfigError) as raised:
        parse_stack_config({**config, "plexichat:kubernetes": json.dumps(kubernetes)}, "dev", secret_keys)
    assert "see docs/configuration.md" in str(raised.value)
    assert CONFIGURATION.exists()
