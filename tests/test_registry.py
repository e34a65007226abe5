"""Pinning a release tag to its image digest (`--pin`), against a real registry (Debian's
docker-registry) and, for the token handshake that registry cannot do without a token service,
a local server speaking the challenge protocol."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from plexictl.__main__ import main
from plexictl.exit_codes import EXIT_DONE, EXIT_INVALID
from plexictl.release.registry import RegistryError, manifest_url, resolve_digest
from tests.registry_server import registry_fixture  # noqa: F401  (the `registry` fixture)
from tests.release_state import pin_release, project_copy

pytestmark = pytest.mark.external


def test_a_tag_resolves_to_the_digest_it_points_to_now(registry):
    repository = f"{registry.host}/plexichat/plexichat"
    first = registry.push("plexichat/plexichat", "v1.6.0", "first build")
    assert resolve_digest(repository, "v1.6.0") == first
    rebuilt = registry.push("plexichat/plexichat", "v1.6.0", "rebuilt")  # a moved tag
    assert rebuilt != first and resolve_digest(repository, "v1.6.0") == rebuilt


def test_an_unknown_tag_or_an_unreachable_registry_is_an_error_that_says_so(registry):
    with pytest.raises(RegistryError, match=r":v9\.9\.9: no such tag or repository$"):
        resolve_digest(f"{registry.host}/plexichat/plexichat", "v9.9.9")
    with pytest.raises(RegistryError, match="the registry is unreachable"):
        resolve_digest("127.0.0.1:9/plexichat/plexichat", "v1.6.0")


def test_registry_urls_use_https_except_for_local_registries():
    assert manifest_url("ghcr.io/plexichat/plexichat", "v1.2.3") == (
        "https://ghcr.io/v2/plexichat/plexichat/manifests/v1.2.3"
    )
    assert manifest_url("localhost:5000/a/b", "v1.2.3").startswith("http://localhost:5000/v2/a/b/")
    with pytest.raises(RegistryError, match="name the registry host"):
        manifest_url("plexichat/plexichat", "v1.2.3")


# --- the token handshake ghcr.io and Docker Hub use ------------------------------------------

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def token_registry():
    """401 with a Bearer challenge until the request carries the token its realm hands out."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # the token service
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query))
            seen.append({"query": query, "authorization": self.headers.get("Authorization")})
            body = json.dumps({"token": "t0ken"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self):  # the registry
            if self.headers.get("Authorization") != "Bearer t0ken":
                realm = f"http://127.0.0.1:{self.server.server_port}/token"
                self.send_response(401)
                self.send_header(
                    "WWW-Authenticate",
                    f'Bearer realm="{realm}",service="registry.test",scope="repository:plexichat/app:pull"',
                )
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Docker-Content-Digest", DIGEST)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.seen = seen  # type: ignore[attr-defined]
    yield server
    server.shutdown()
    server.server_close()


def test_a_bearer_challenge_is_answered_with_a_token_from_its_realm(token_registry):
    repository = f"127.0.0.1:{token_registry.server_port}/plexichat/app"
    assert resolve_digest(repository, "v1.6.0", environ={}) == DIGEST
    (request,) = token_registry.seen
    assert request == {
        "query": {"service": "registry.test", "scope": "repository:plexichat/app:pull"},
        "authorization": None,  # anonymous: a public image
    }
    credentials = {"PLEXICHAT_REGISTRY_USER": "ci", "PLEXICHAT_REGISTRY_PASSWORD": "secret"}
    assert resolve_digest(repository, "v1.6.0", environ=credentials) == DIGEST
    assert token_registry.seen[-1]["authorization"] == "Basic Y2k6c2VjcmV0"


# --- the release commands ----------------------------------------------------------------------


def project_with_registry(tmp_path, host: str):
    project = project_copy(tmp_path)
    pin_release(project / "Pulumi.dev.yaml", "dev")
    path = project / "Pulumi.dev.yaml"
    path.write_text(
        path.read_text()
        + f"  plexichat:imageRepository: {host}/plexichat/plexichat\n"
        + f"  plexichat:allowedRegistries: [{host}/plexichat]\n"
    )
    return project, path


def test_deploy_with_pin_writes_the_tag_with_its_digest(registry, tmp_path, capsys):
    digest = registry.push("plexichat/plexichat", "v1.7.0", "deploy")
    project, path = project_with_registry(tmp_path, registry.host)
    code = main(["--project-dir", str(project), "deploy", "v1.7.0", "--pin", "--stack", "dev"])
    assert code == EXIT_DONE, capsys.readouterr()
    assert f"version: v1.7.0@{digest}\n" in path.read_text()
    assert f"plexichat/plexichat:v1.7.0 is {digest}" in capsys.readouterr().out


def test_pin_of_a_tag_the_registry_does_not_have_changes_nothing(registry, tmp_path, capsys):
    project, path = project_with_registry(tmp_path, registry.host)
    before = path.read_text()
    code = main(["--project-dir", str(project), "canary", "start", "v9.9.9", "--pin", "--stack", "dev"])
    assert code == EXIT_INVALID
    err = capsys.readouterr().err
    assert "cannot pin v9.9.9: " in err and "no such tag or repository; give it as v9.9.9@sha256:<digest>" in err
    assert path.read_text() == before
