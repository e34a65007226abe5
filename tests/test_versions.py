"""Versions (components/versions.py): the three forms, what is derived from them, and how a
release that pins its image by digest renders under the mock engine."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.config import versions
from components.config.parse import ConfigError, parse_stack_config
from plexictl.offline import stack_config
from tests.conftest import render_edited, rendered

HEX = "0123456789abcdef" * 4
DIGEST = f"sha256:{HEX}"
REPOSITORY = "ghcr.io/plexichat/plexichat"

# What Kubernetes accepts (apimachinery validation): a label value, and an RFC 1035 DNS label.
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")

# Up to 20 digits per number: the longest tags are exactly 63 characters, the label limit.
numbers = st.integers(0, 10**20 - 1)
tags = st.builds(lambda a, b, c: f"v{a}.{b}.{c}", numbers, numbers, numbers)
digests = st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"sha256:{h}")
pinned = st.builds(lambda t, d: f"{t}@{d}", tags, digests)
every_version = tags | digests | pinned
ordered_versions = tags | pinned


# ---------------------------------------------------------------------------------------------
# The three forms


@pytest.mark.parametrize(
    "text, tag, digest",
    [
        ("v1.2.3", "v1.2.3", None),
        ("v0.0.0", "v0.0.0", None),
        ("v10.20.30", "v10.20.30", None),
        (DIGEST, None, DIGEST),
        (f"v1.2.3@{DIGEST}", "v1.2.3", DIGEST),
    ],
)
def test_the_three_forms_parse_into_tag_and_digest(text, tag, digest):
    parsed = versions.parse(text)
    assert (parsed.tag, parsed.digest) == (tag, digest)
    assert str(parsed) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "latest",
        "1.2.3",
        "v1.2",
        "v1.2.3.4",
        "V1.2.3",
        " v1.2.3",
        "v1.2.3 ",
        "v1.2.3\n",  # `$` would accept it; the module uses fullmatch
        "v1.2.3-rc.1",
        "v1.2.3+build.5",  # prerelease and build suffixes: not in docs/design.md
        "v01.2.3",
        "v1.02.3",  # leading zeros: two spellings of one release
        "v\u0661.2.3",  # an Arabic-Indic digit: `\d` would accept it
        "sha256:" + HEX[:63],
        "sha256:" + HEX + "0",
        "sha256:" + HEX.upper(),
        "sha512:" + HEX,
        "sha256-" + HEX,
        HEX,
        "v1.2.3@",
        f"@{DIGEST}",
        f"{DIGEST}@v1.2.3",
        f"v1.2.3:{DIGEST}",
        f"v1.2.3@{DIGEST}@{DIGEST}",
        f"latest@{DIGEST}",
        "v1.2." + "9" * 60,  # longer than the 63 characters of the version label
        None,
        123,
    ],
)
def test_anything_else_is_rejected_with_the_three_forms(text):
    with pytest.raises(versions.InvalidVersion) as raised:
        versions.parse(text)
    message = str(raised.value)
    assert message.startswith("must be ")
    for form in ("v1.2.3", "sha256:<64 hex>", "v1.2.3@sha256:<64 hex>"):
        assert form in message
    assert repr(text) in message


@given(every_version)
def test_parse_and_str_are_inverse(version):
    assert str(versions.parse(version)) == version


# ---------------------------------------------------------------------------------------------
# Image references


@pytest.mark.parametrize(
    "version, reference",
    [
        ("v1.2.3", f"{REPOSITORY}:v1.2.3"),
        (DIGEST, f"{REPOSITORY}@{DIGEST}"),
        (f"v1.2.3@{DIGEST}", f"{REPOSITORY}:v1.2.3@{DIGEST}"),
    ],
)
def test_image_reference_uses_tag_and_digest_syntax(version, reference):
    assert versions.image_reference(REPOSITORY, version) == reference


def _split_reference(reference: str) -> tuple[str, str]:
    """(repository, version) as a container runtime reads `name[:tag][@digest]`: the digest
    after the last `@`, the tag after a `:` that follows the last `/` (a registry port's `:`
    comes before it)."""
    name, _, digest = reference.partition("@")
    repository, colon, tag = name.rpartition(":")
    if not colon or "/" in tag:
        repository, tag = name, ""
    return repository, "@".join(part for part in (tag, digest) if part)


@given(st.sampled_from([REPOSITORY, "localhost:5000/plexichat", "registry.example.com:443/team/app"]), every_version)
def test_image_reference_round_trips_through_parse(repository, version):
    parsed_back = _split_reference(versions.image_reference(repository, version))
    assert parsed_back[0] == repository
    assert versions.parse(parsed_back[1]) == versions.parse(version)


# ---------------------------------------------------------------------------------------------
# Labels and names


@pytest.mark.parametrize(
    "version, label, slug",
    [
        ("v1.2.3", "v1.2.3", "v1-2-3"),
        (DIGEST, HEX[:12], f"sha256-{HEX[:12]}"),
        (f"v1.2.3@{DIGEST}", "v1.2.3", f"v1-2-3-{HEX[:12]}"),
    ],
)
def test_label_value_and_name_slug(version, label, slug):
    assert versions.label_value(version) == label
    assert versions.name_slug(version) == slug


@given(every_version)
def test_label_value_is_always_a_valid_label_value(version):
    label = versions.label_value(version)
    assert LABEL_VALUE.fullmatch(label) and len(label) <= 63


@given(every_version, st.integers(16, 63))
def test_name_slug_is_always_a_dns_label_within_its_budget(version, max_length):
    for slug in (versions.name_slug(version), versions.name_slug(version, max_length)):
        assert DNS_LABEL.fullmatch(slug), slug
    assert len(versions.name_slug(version)) <= 63
    assert len(versions.name_slug(version, max_length)) <= max_length


@given(st.lists(every_version, min_size=2, max_size=8, unique=True), st.integers(16, 63))
def test_different_versions_get_different_slugs(version_list, max_length):
    for budget in (63, max_length):
        slugs = [versions.name_slug(v, budget) for v in version_list]
        assert len(set(slugs)) == len(slugs), version_list


@given(tags, st.lists(digests, min_size=2, max_size=2, unique=True))
def test_a_rebuilt_tag_gets_a_new_slug_but_keeps_its_label(tag, two_digests):
    first, second = (f"{tag}@{d}" for d in two_digests)
    if two_digests[0][:19] != two_digests[1][:19]:  # the 12 hex digits the slug keeps differ
        assert versions.name_slug(first) != versions.name_slug(second)
    assert versions.label_value(first) == versions.label_value(second) == tag


def test_a_long_slug_is_cut_and_fingerprinted():
    migrate_budget = 63 - len("plexichat-migrate-")
    slug = versions.name_slug(f"v1.2.3@{DIGEST}", migrate_budget)
    assert slug == f"v1-2-3-{HEX[:12]}"  # fits: 19 characters
    long_tag = "v" + "1" * 20 + "." + "2" * 20 + "." + "3" * 20
    slug = versions.name_slug(long_tag, migrate_budget)
    assert len(slug) <= migrate_budget and slug.startswith("v111") and DNS_LABEL.fullmatch(slug)
    with pytest.raises(ValueError, match="max_length"):
        versions.name_slug("v1.2.3", 8)


# ---------------------------------------------------------------------------------------------
# Release order


@pytest.mark.parametrize(
    "candidate, than, expected",
    [
        ("v1.10.0", "v1.9.0", True),  # numbers, not text
        ("v2.0.0", "v1.99.99", True),
        ("v1.2.4", "v1.2.3", True),
        ("v1.2.3", "v1.2.4", False),
        ("v1.2.3", "v1.2.3", False),
        (f"v1.2.3@{DIGEST}", "v1.2.3", False),  # the digest takes no part: the same release
        (f"v1.3.0@{DIGEST}", "v1.2.3", True),
    ],
)
def test_newer_compares_tag_numbers(candidate, than, expected):
    assert versions.newer(candidate, than) is expected


@pytest.mark.parametrize("candidate, than", [(DIGEST, "v1.2.3"), ("v1.2.3", DIGEST), (DIGEST, DIGEST)])
def test_a_bare_digest_has_no_order(candidate, than):
    with pytest.raises(versions.UnorderedVersion, match="bare digest"):
        versions.newer(candidate, than)


@given(ordered_versions, ordered_versions, ordered_versions)
def test_ordering_is_consistent(a, b, c):
    key = versions.release_key
    assert versions.newer(a, b) == (key(a) > key(b))
    assert not (versions.newer(a, b) and versions.newer(b, a))
    assert not versions.newer(a, a)
    if versions.newer(a, b) and versions.newer(b, c):
        assert versions.newer(a, c)
    ordered = sorted([a, b, c], key=key)
    assert all(not versions.newer(x, y) for x, y in itertools.pairwise(ordered))


# ---------------------------------------------------------------------------------------------
# Settings and the rendered stack


@pytest.mark.parametrize("bad", ["v1.2.3-rc.1", "latest", f"v1.2.3@{DIGEST[:-1]}"])
def test_settings_report_a_bad_version_with_its_key_and_the_three_forms(bad):
    config, secret_keys = stack_config("dev")
    config["plexichat:release"] = json.dumps({"strategy": "rolling", "version": bad})
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(config, "dev", secret_keys)
    (line,) = [ln for ln in str(raised.value).splitlines() if "plexichat:release.version" in ln]
    assert f"must be {versions.ALLOWED_FORMS}" in line and repr(bad) in line


@pytest.mark.parametrize("version", [f"v1.2.3@{DIGEST}", "v1.2.3", DIGEST])
def test_settings_accept_the_three_forms(version):
    config, secret_keys = stack_config("dev")
    config["plexichat:release"] = json.dumps({"strategy": "rolling", "version": version})
    assert parse_stack_config(config, "dev", secret_keys).release.version == version


def _release_version(version: str):
    def edit(config):
        config["plexichat:release"]["version"] = version

    return edit


def _deployments(rendering):
    return rendering.of_type("kubernetes:apps/v1:Deployment")


@pytest.mark.parametrize(
    "version, image, label",
    [
        (f"v1.6.0@{DIGEST}", f"ghcr.io/plexichat/plexichat:v1.6.0@{DIGEST}", "v1.6.0"),
        (DIGEST, f"ghcr.io/plexichat/plexichat@{DIGEST}", HEX[:12]),
    ],
)
def test_a_digest_release_renders_pinned_images_and_readable_labels(version, image, label):
    rendering = render_edited("dev", _release_version(version))
    deployments = _deployments(rendering)
    assert deployments
    for deployment in deployments:
        template = deployment.inputs["spec"]["template"]
        assert [c["image"] for c in template["spec"]["containers"]] == [image]
        assert template["metadata"]["labels"]["version"] == label
        assert template["metadata"]["labels"]["app.kubernetes.io/version"] == label

    # A version is no part of any long-lived resource's name: pinning by digest changes no URN
    # but the migration Job's, which is named after the schema version (a new image, a new Job).
    def lasting(r):
        return {x.urn for x in r.resources if x.type != "kubernetes:batch/v1:Job"}

    assert lasting(rendering) == lasting(rendered("dev"))
    (job,) = [j for j in rendering.of_type("kubernetes:batch/v1:Job") if j.name.startswith("migrations-")]
    assert job.inputs["spec"]["template"]["spec"]["containers"][0]["image"] == image


def test_an_ordinary_tag_renders_as_before():
    for deployment in _deployments(rendered("dev")):
        template = deployment.inputs["spec"]["template"]
        assert template["spec"]["containers"][0]["image"] == f"{REPOSITORY}:v1.5.0"
        assert template["metadata"]["labels"]["version"] == "v1.5.0"
