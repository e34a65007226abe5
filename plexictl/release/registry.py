"""A release tag's image digest, asked of the registry (the OCI Distribution API), so a release
command can write `v1.2.3@sha256:<digest>`: readable and immutable, as production requires.

One HEAD request for the tag's manifest; the registry answers with `Docker-Content-Digest`, the
digest a runtime pulls by (an image index's for a multi-architecture image, so every node pulls
its own platform of the same release). A registry that wants a token says so in a 401 challenge
(`WWW-Authenticate: Bearer realm=...,service=...,scope=...`); the token is fetched anonymously, or
with PLEXICHAT_REGISTRY_USER / PLEXICHAT_REGISTRY_PASSWORD when set (a private repository).
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
"""What we accept for a tag: an index (multi-architecture) before a single manifest."""
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
"""Registries reached over plain HTTP, as container runtimes allow for them by default."""
TIMEOUT_SECONDS = 10


class RegistryError(Exception):
    """The digest could not be resolved; the message says where and why."""


def manifest_url(repository: str, tag: str) -> str:
    """`https://ghcr.io/v2/plexichat/plexichat/manifests/v1.2.3` for `ghcr.io/plexichat/plexichat`."""
    host, _, name = repository.partition("/")
    if not name or ("." not in host and ":" not in host and host != "localhost"):
        raise RegistryError(f"{repository}: name the registry host (such as ghcr.io/org/image)")
    scheme = "http" if host.rsplit(":", 1)[0] in LOCAL_HOSTS else "https"
    return f"{scheme}://{host}/v2/{name}/manifests/{urllib.parse.quote(tag)}"


def resolve_digest(repository: str, tag: str, environ: Mapping[str, str] = os.environ) -> str:
    """The digest `repository:tag` points to now, or RegistryError."""
    url = manifest_url(repository, tag)
    headers = {"Accept": ", ".join(MANIFEST_TYPES)}
    try:
        try:
            response = _head(url, headers)
        except urllib.error.HTTPError as error:
            if error.code != 401:
                raise
            headers["Authorization"] = _authorization(error.headers.get("WWW-Authenticate", ""), environ)
            response = _head(url, headers)
    except urllib.error.HTTPError as error:
        reason = "no such tag or repository" if error.code == 404 else f"HTTP {error.code} {error.reason}"
        raise RegistryError(f"{repository}:{tag}: {reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise RegistryError(f"{repository}:{tag}: the registry is unreachable ({error})") from None
    digest = response.get("Docker-Content-Digest", "")
    if not DIGEST.fullmatch(digest):
        raise RegistryError(f"{repository}:{tag}: the registry answered without a sha256 digest ({digest!r})")
    return digest


def _head(url: str, headers: dict[str, str]) -> Mapping[str, str]:
    request = urllib.request.Request(url, method="HEAD", headers=headers)
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        return response.headers


def _authorization(challenge: str, environ: Mapping[str, str]) -> str:
    """The Authorization header a 401 challenge asks for: a bearer token, or basic credentials."""
    user, password = environ.get("PLEXICHAT_REGISTRY_USER"), environ.get("PLEXICHAT_REGISTRY_PASSWORD")
    basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode() if user and password else None
    scheme, _, params = challenge.partition(" ")
    if scheme.lower() == "basic" and basic:
        return basic
    if scheme.lower() != "bearer":
        raise urllib.error.URLError(
            f"the registry asks for {scheme or 'an unknown'} authentication without credentials"
        )
    fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
    realm = fields.pop("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise urllib.error.URLError(f"the registry's token challenge has no realm: {challenge!r}")
    request = urllib.request.Request(f"{realm}?{urllib.parse.urlencode(fields)}")
    if basic:
        request.add_header("Authorization", basic)
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        answer = json.load(response)
    token = answer.get("token") or answer.get("access_token")
    if not token:
        raise urllib.error.URLError("the registry's token service answered without a token")
    return f"Bearer {token}"
