"""Release versions: the one definition of a version and of everything derived from one.

A version names one image, readably and immutably (docs/design.md: Versions). Exactly three forms:

    v1.2.3                    a release tag (readable; a registry can move it)
    sha256:<64 hex>           an image digest (immutable; unreadable)
    v1.2.3@sha256:<64 hex>    both: the tag says which release, the digest pins the exact image

Nothing else: no `latest`, no `1.2.3` without the `v`, no prerelease or build suffixes
(`v1.2.3-rc.1`): docs/design.md lists none, no stack uses one, and the ordering below would have to
invent their precedence. Release numbers have no leading zeros, so two different tags never
denote the same release (`v1.02.3` and `v1.2.3` would). A tag has at most 63
characters, since it is also the pod's version label.

Everything built from a version comes from here, so settings, release commands, image
references, pod labels and derived names can never disagree:
- `image_reference`: `repo:v1.2.3`, `repo@sha256:<hex>`, `repo:v1.2.3@sha256:<hex>`;
- `pull_policy`: `IfNotPresent` for a digest, `Always` for a tag alone;
- `label_value`: the pod version label, the tag part, or the first 12 hex digits of a bare
  digest (a label value holds no `:` or `@` and at most 63 characters);
- `name_slug`: a DNS label for names derived from a version (a migration Job's, say);
- `newer` / `release_key`: release order, by the tag's numbers only.

Pure: no Pulumi, no settings; `components/settings.py` validates with `parse`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

ALLOWED_FORMS = "a release tag such as v1.2.3, an image digest sha256:<64 hex>, or both: v1.2.3@sha256:<64 hex>"
"""The three forms, in the words every version error uses (`must be ` + this)."""

LABEL_MAX_LENGTH = 63
"""Characters in a Kubernetes label value, and in a DNS label such as a Job's name."""
SHORT_DIGEST_LENGTH = 12
"""Hex digits of a digest kept in labels and names: what `docker images` shows, 48 bits."""

# [0-9], not \d: \d also matches non-ASCII digits such as '١'. No leading zeros (module docstring).
# fullmatch only, never `^...$`: `$` also matches before a trailing newline.
_TAG = re.compile(r"v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class InvalidVersion(ValueError):
    """Text that is none of the three forms. The message lists them and quotes the text."""

    def __init__(self, text: object) -> None:
        self.text = text
        super().__init__(f"must be {ALLOWED_FORMS} (got {text!r})")


class UnorderedVersion(ValueError):
    """A bare digest has no release number, so it is neither newer nor older than anything."""


@dataclass(frozen=True)
class ParsedVersion:
    tag: str | None
    """`v1.2.3`, the readable part; None for a bare digest."""
    digest: str | None
    """`sha256:<64 hex>`, the immutable part; None for a bare tag."""

    def __str__(self) -> str:
        """The version as written: the inverse of `parse`."""
        return "@".join(part for part in (self.tag, self.digest) if part)

    @property
    def short_digest(self) -> str | None:
        """The first 12 hex digits of the digest, without `sha256:`."""
        return self.digest.removeprefix("sha256:")[:SHORT_DIGEST_LENGTH] if self.digest else None

    @property
    def release_numbers(self) -> tuple[int, int, int] | None:
        """(major, minor, patch) of the tag; None for a bare digest."""
        if self.tag is None:
            return None
        major, minor, patch = (int(n) for n in self.tag[1:].split("."))
        return major, minor, patch


def parse(text: object) -> ParsedVersion:
    """Split a version into its tag and digest, or raise `InvalidVersion`."""
    if isinstance(text, str):
        if _DIGEST.fullmatch(text):
            return ParsedVersion(tag=None, digest=text)
        tag, pinned, digest = text.partition("@")
        # The tag is also the pod's version label, which must fit in one.
        if _TAG.fullmatch(tag) and len(tag) <= LABEL_MAX_LENGTH and (not pinned or _DIGEST.fullmatch(digest)):
            return ParsedVersion(tag=tag, digest=digest or None)
    raise InvalidVersion(text)


def is_valid(text: object) -> bool:
    try:
        parse(text)
    except InvalidVersion:
        return False
    return True


def image_reference(repository: str, version: str) -> str:
    """`repo:v1.2.3`, `repo@sha256:<hex>` or `repo:v1.2.3@sha256:<hex>` (the OCI reference syntax:
    a tag follows `:`, a digest follows `@`, and a runtime pulls by the digest when both are given)."""
    parsed = parse(version)
    tag = f":{parsed.tag}" if parsed.tag else ""
    digest = f"@{parsed.digest}" if parsed.digest else ""
    return f"{repository}{tag}{digest}"


def pull_policy(reference: str) -> str:
    """`IfNotPresent` for an image pinned by digest (what a node has cached is exactly that image,
    and pods restart while the registry is down); `Always` for a tag alone, which a registry can
    move, so a node never runs a stale image under a current tag."""
    return "IfNotPresent" if "@sha256:" in reference else "Always"


def label_value(version: str) -> str:
    """The pod `version` label: the tag part (`v1.2.3`), or the first 12 hex digits of a bare
    digest. Istio telemetry reports it as `destination_version`, so it stays readable; the digest
    of a pinned tag is left out, since a label cannot hold `@` and the tag already names the
    release."""
    parsed = parse(version)
    label = parsed.tag or parsed.short_digest
    assert label is not None, "parse() returns a tag, a digest or both"
    return label


def name_slug(version: str, max_length: int = LABEL_MAX_LENGTH) -> str:
    """A DNS label (RFC 1035: lowercase letters, digits and '-', starting with a letter) of at
    most `max_length` characters that names the version inside derived object names, e.g.
    `"plexichat-migrate-" + name_slug(v, 63 - len("plexichat-migrate-"))`.

    The rule (different versions get different slugs):
    - `v1.2.3`               -> `v1-2-3`: dots become dashes, the three numbers stay apart;
    - `sha256:<hex>`         -> `sha256-<first 12 hex>`;
    - `v1.2.3@sha256:<hex>`  -> `v1-2-3-<first 12 hex>`: a rebuild of the same tag gets a new
      name, because a Job's pod template is immutable and a new image needs a new Job.
    The forms cannot collide: a digest's slug starts with `s`, a tag's with `v`, and only a
    pinned tag has four dash-separated parts; two digests collide only if their first 48 bits
    agree. A slug longer than `max_length` (a very long tag, or a small budget) keeps its
    readable start and ends in `-` + 8 hex digits of the SHA-256 of the whole version, so a cut
    never merges two versions.
    """
    if max_length < 16:
        raise ValueError(f"max_length {max_length} leaves no room for a readable slug; use 16 or more")
    parsed = parse(version)
    if parsed.tag is None:
        slug = f"sha256-{parsed.short_digest}"
    else:
        slug = parsed.tag.replace(".", "-") + (f"-{parsed.short_digest}" if parsed.digest else "")
    if len(slug) <= max_length:
        return slug
    fingerprint = hashlib.sha256(str(parsed).encode()).hexdigest()[:8]
    return slug[: max_length - len(fingerprint) - 1].rstrip("-") + "-" + fingerprint


def release_key(version: str) -> tuple[int, int, int]:
    """The sort key of a version: its tag's (major, minor, patch), compared as numbers
    (v1.10.0 is after v1.9.0). The digest plays no part: `v1.2.3` and `v1.2.3@sha256:...` are
    the same release. A bare digest has no key and raises `UnorderedVersion`: the caller says
    what an unordered version means for it (a migration plan may not guess)."""
    numbers = parse(version).release_numbers
    if numbers is None:
        raise UnorderedVersion(
            f"{version} is a bare digest: it has no release number to order by; write it as vX.Y.Z@sha256:<64 hex>"
        )
    return numbers


def newer(candidate: str, than: str) -> bool:
    """Whether `candidate` is a later release than `than` (False for the same release, whatever
    the digests). Raises `UnorderedVersion` if either is a bare digest."""
    return release_key(candidate) > release_key(than)
