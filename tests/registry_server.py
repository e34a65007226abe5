"""A real OCI image registry for tests: Debian's `docker-registry` (the CNCF distribution registry)
on a free 127.0.0.1 port with a throwaway storage directory. `push` uploads a minimal image (a
config blob and its manifest) through the registry's own API and returns the manifest's digest,
which is what the registry must then report for the tag.

Without the binary the tests skip; with PLEXICHAT_REQUIRE_REGISTRY=1 (set by .ci/run) they fail.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tools import free_port, missing

STARTUP_TIMEOUT_SECONDS = 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class Registry:
    host: str
    """`127.0.0.1:PORT`: the registry part of an image repository."""

    def push(self, name: str, tag: str, content: str = "") -> str:
        """An image `name:tag` whose config holds `content`; returns the manifest's digest."""
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"c": content}}}).encode()
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        upload = self._request("POST", f"/v2/{name}/blobs/uploads/")
        location = upload.headers["Location"]
        separator = "&" if "?" in location else "?"
        target = f"{location}{separator}digest={urllib.parse.quote(config_digest)}"
        self._request("PUT", target, config, {"Content-Type": "application/octet-stream"})
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config),
                },
                "layers": [],
            }
        ).encode()
        self._request("PUT", f"/v2/{name}/manifests/{tag}", manifest, {"Content-Type": OCI_MANIFEST})
        return "sha256:" + hashlib.sha256(manifest).hexdigest()

    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        url = path if path.startswith("http") else f"http://{self.host}{path}"
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        return urllib.request.urlopen(request, timeout=10)


@pytest.fixture(scope="module", name="registry")
def registry_fixture(tmp_path_factory) -> Iterator[Registry]:
    binary = shutil.which("docker-registry")
    if binary is None:
        missing("docker-registry", "PLEXICHAT_REQUIRE_REGISTRY", "apt-get install docker-registry")
    root: Path = tmp_path_factory.mktemp("registry")
    host = f"127.0.0.1:{free_port()}"
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: false}}}}\n"
        f"http: {{addr: '{host}'}}\n"
    )
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            try:
                urllib.request.urlopen(f"http://{host}/v2/", timeout=1).close()
                break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    pytest.fail(f"docker-registry did not start on {host}: {process.stderr.read()[-2000:]}")
                time.sleep(0.1)
        yield Registry(host)
    finally:
        process.terminate()
        process.wait(timeout=10)
