"""Every credential the program keeps rotates at least every 30 days (the runbook), or is a
documented exception; and the cache token's rotation function does what it says.

The function (components/data/lambdas/cache_auth_rotation.py) runs against moto: Secrets Manager
is moto's, rotation included (moto's RotateSecret creates the AWSPENDING version and invokes the
function for each step; its Lambda backend would run the code in Docker, so the invocation calls
the function here instead), and so are the replication group's description and `available`
waiter. moto's ModifyReplicationGroup ignores AuthToken and AuthTokenUpdateStrategy, so that one
call goes to a botocore Stubber client, which checks it against ElastiCache's API model and the
expected parameters; `TokenCache` keeps the tokens the group would accept after it (ROTATE adds
one, SET keeps only its own) and stands in for logging in to the cache. `token_works` itself logs
in to a local TLS server that speaks the Redis protocol.
"""

from __future__ import annotations

import datetime
import io
import json
import socket
import ssl
import threading
import zipfile

import boto3
import pytest
from botocore.stub import ANY, Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto.awslambda.models import LambdaBackend

from components.data.cache_auth_rotation import RETIRE_AFTER, ROTATION_DAYS
from components.data.lambdas import cache_auth_rotation as function
from plexictl.offline import ROOT
from tests.conftest import STACKS, render_edited, rendered
from tests.test_settings import _set
from tests.tools import offline_aws

SECRET = "aws:secretsmanager/secret:Secret"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
DATA_TIER_DOC = ROOT / "docs" / "data-tier.md"

# --- the inventory: every secret in every stack -----------------------------------------------

UNROTATED = {
    "monitoring-receivers-secret": (
        "plexichat/<stack>/alert-receivers",
        "the chat tool and PagerDuty issue these URLs and keys; the program cannot make new ones",
    ),
    "static-assets-origin-secret": (
        "plexichat/<stack>/cdn-origin-header",
        "guards no data; a new value takes effect at the next deploy, so it is rotated by procedure (docs/edge.md)",
    ),
}
"""Secrets the program keeps but cannot rotate: resource name -> (the secret's name as
docs/data-tier.md lists it, why)."""


def _both_iam(config):
    _set("database.appAuth", "iam")(config)
    _set("cache.appAuth", "iam")(config)


def _renderings():
    for stack in STACKS:
        for preview in (False, True):
            yield pytest.param(stack, preview, None, id=f"{stack}-{'preview' if preview else 'up'}")
    yield pytest.param("prod", False, _both_iam, id="prod-iam")


@pytest.mark.parametrize("stack,preview,edit", list(_renderings()))
def test_every_secret_rotates_at_least_every_30_days_or_is_a_documented_exception(stack, preview, edit):
    r = render_edited(stack, edit, preview) if edit else rendered(stack, preview)
    rotations = r.of_type(ROTATION)
    for rotation in rotations:  # the RDS-managed master secret's too, which is no Secret here
        assert rotation.inputs["rotationRules"]["automaticallyAfterDays"] <= 30, rotation.name
    for secret in r.of_type(SECRET):
        rotated_by = [x for x in rotations if secret.urn in x.dependencies]
        if secret.name in UNROTATED:
            assert rotated_by == [], f"{secret.name} rotates now: take it off the exceptions"
            listed_as, why = UNROTATED[secret.name]
            assert secret.inputs["name"] == listed_as.replace("<stack>", stack)
            assert listed_as in DATA_TIER_DOC.read_text(), f"docs/data-tier.md must list {listed_as}: {why}"
        else:
            assert len(rotated_by) == 1, f"{secret.name} has no rotation"


def test_iam_everywhere_leaves_no_secret_but_the_exceptions():
    r = render_edited("prod", _both_iam)
    assert {s.name for s in r.of_type(SECRET)} == set(UNROTATED)


def test_no_stack_may_rotate_less_often_than_the_runbook():
    from components.config.data import DatabaseSettings

    assert DatabaseSettings.model_fields["password_rotation_days"].default == ROTATION_DAYS == 30
    with pytest.raises(ValueError, match="1 to 30"):
        DatabaseSettings(identifier="plexichat-x", password_rotation_days=31)


# --- the cache token's rotation function --------------------------------------------------------

REGION = "us-east-1"
GROUP = "plexichat-test"
FIRST_TOKEN = "FirstToken0123456789abcdefABCDEF"


class TokenCache:
    """The AUTH tokens the replication group accepts, as ElastiCache keeps them: ROTATE adds one
    next to the current (two at most), SET keeps only its own (and is refused unless it holds
    it). Its ModifyReplicationGroup goes to a Stubber client; everything else to moto."""

    def __init__(self, session: boto3.Session, tokens: list[str]) -> None:
        self.moto = session.client("elasticache")
        self.stubbed = session.client("elasticache")
        self.stubber = Stubber(self.stubbed)
        self.stubber.activate()
        self.tokens = list(tokens)
        self.strategies: list[str] = []
        self.ignore_next_token = False

    def expect(self, strategy: str) -> None:
        self.stubber.add_response(
            "modify_replication_group",
            {"ReplicationGroup": {"ReplicationGroupId": GROUP, "Status": "modifying"}},
            {
                "ReplicationGroupId": GROUP,
                "AuthToken": ANY,
                "AuthTokenUpdateStrategy": strategy,
                "ApplyImmediately": True,
            },
        )

    def accepts(self, host: str, port: int, token: str) -> bool:
        assert host.startswith(f"master.{GROUP}.") and port == 6379
        return token in self.tokens

    def client(self) -> _ElastiCache:
        return _ElastiCache(self)

    def modified(self, token: str, strategy: str) -> None:
        self.strategies.append(strategy)
        if strategy == "SET":
            assert token in self.tokens, "ElastiCache allows SET only for a token ROTATE added"
            self.tokens = [token]
        elif self.ignore_next_token:
            self.ignore_next_token = False
        else:
            self.tokens = [*self.tokens, token][-2:]


class _ElastiCache:
    def __init__(self, cache: TokenCache) -> None:
        self._cache = cache

    def modify_replication_group(self, **params):
        response = self._cache.stubbed.modify_replication_group(**params)
        self._cache.modified(params["AuthToken"], params["AuthTokenUpdateStrategy"])
        return response

    def __getattr__(self, name):
        return getattr(self._cache.moto, name)


class Harness:
    """moto's AWS with the group, the secret (FIRST_TOKEN, rotation on) and the function."""

    def __init__(self, session: boto3.Session, monkeypatch) -> None:
        self.secrets = session.client("secretsmanager")
        self.cache = TokenCache(session, [FIRST_TOKEN])
        session.client("elasticache").create_replication_group(
            ReplicationGroupId=GROUP,
            ReplicationGroupDescription="PlexiChat cache (test)",
            Engine="valkey",
            NumCacheClusters=2,
            TransitEncryptionEnabled=True,
            AuthToken=FIRST_TOKEN,
        )
        self.arn = self.secrets.create_secret(Name="plexichat/test/cache-auth-token", SecretString=FIRST_TOKEN)["ARN"]
        self.now = datetime.datetime.now(datetime.UTC)
        self.runs_per_step = 1
        self.steps: list[str] = []
        self.function_arn = _function(session)
        monkeypatch.setattr(LambdaBackend, "invoke", self._invoke)

    def rotation(self) -> function.Rotation:
        return function.Rotation(
            secretsmanager=self.secrets,
            elasticache=self.cache.client(),
            group_id=GROUP,
            retire_after=RETIRE_AFTER,
            token_works=self.cache.accepts,
        )

    def _invoke(self, function_name, qualifier, body, headers, response_headers):
        event = json.loads(body)
        self.steps.append(event["Step"])
        for _ in range(self.runs_per_step):
            self.rotation().run(event, self.now)
        return b""

    def rotate(self) -> None:
        """What Secrets Manager does every ROTATION_DAYS (or `aws secretsmanager rotate-secret`)."""
        self.secrets.rotate_secret(
            SecretId=self.arn,
            RotationLambdaARN=self.function_arn,
            RotationRules={"AutomaticallyAfterDays": ROTATION_DAYS},
        )

    def retire(self, hours_after_rotation: float) -> None:
        """The hourly schedule's event, `hours_after_rotation` after the current version."""
        created = self._version(function.CURRENT)["CreatedDate"]
        now = created + datetime.timedelta(hours=hours_after_rotation)
        self.rotation().run({"Step": function.RETIRE_STEP, "SecretId": self.arn}, now)

    def value(self, stage: str) -> str:
        return self.secrets.get_secret_value(SecretId=self.arn, VersionStage=stage)["SecretString"]

    def _version(self, stage: str) -> dict:
        (version,) = [
            v
            for v in self.secrets.list_secret_version_ids(SecretId=self.arn)["Versions"]
            if stage in v["VersionStages"]
        ]
        return version

    def stages(self, stage: str) -> list[str]:
        return self._version(stage)["VersionStages"]


def _function(session: boto3.Session) -> str:
    """A function moto knows (its code never runs: Harness invokes the module here)."""
    role = session.client("iam").create_role(RoleName="rotation", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("cache_auth_rotation.py", "")
    created = session.client("lambda").create_function(
        FunctionName=f"{GROUP}-auth-rotation",
        Runtime="python3.13",
        Role=role,
        Handler="cache_auth_rotation.handler",
        Code={"ZipFile": package.getvalue()},
    )
    return created["FunctionArn"]


@pytest.fixture
def aws(monkeypatch):
    """moto's AWS (tests/tools.py `offline_aws`)."""
    with offline_aws(monkeypatch):
        yield Harness(boto3.Session(region_name=REGION), monkeypatch)


def test_a_rotation_adds_the_new_token_next_to_the_old_and_retires_the_old_a_day_later(aws):
    aws.cache.expect("ROTATE")
    aws.rotate()
    assert aws.steps == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    new = aws.value(function.CURRENT)
    assert new != FIRST_TOKEN and len(new) == function.TOKEN_LENGTH and new.isalnum()
    assert aws.value(function.PREVIOUS) == FIRST_TOKEN
    # Both work while External Secrets delivers the new one and the pods roll.
    assert aws.cache.tokens == [FIRST_TOKEN, new]

    aws.retire(hours_after_rotation=1)
    assert aws.cache.tokens == [FIRST_TOKEN, new]  # too early: no call (the Stubber has none queued)

    aws.cache.expect("SET")
    aws.retire(hours_after_rotation=25)
    assert aws.cache.tokens == [new]
    assert function.SOLE_TOKEN in aws.stages(function.CURRENT)

    aws.retire(hours_after_rotation=26)  # done: nothing more
    assert aws.cache.strategies == ["ROTATE", "SET"]
    aws.cache.stubber.assert_no_pending_responses()


def test_every_step_may_run_twice_and_does_its_work_once(aws):
    aws.runs_per_step = 2  # Secrets Manager retries a step that timed out
    aws.cache.expect("ROTATE")
    aws.rotate()
    assert aws.cache.strategies == ["ROTATE"]
    assert aws.cache.tokens == [FIRST_TOKEN, aws.value(function.CURRENT)]
    versions = aws.secrets.list_secret_version_ids(SecretId=aws.arn)["Versions"]
    assert len(versions) == 2  # one new version, not two


def test_a_token_the_cache_does_not_accept_never_becomes_current(aws):
    aws.cache.expect("ROTATE")
    aws.cache.ignore_next_token = True  # the modification did not take
    with pytest.raises(function.RotationError, match="refuse the new token"):
        aws.rotate()
    assert aws.steps == ["createSecret", "setSecret", "testSecret"]
    assert aws.value(function.CURRENT) == FIRST_TOKEN  # the app keeps a token that works


def test_a_second_rotation_retires_the_previous_token_first_or_waits_for_it(aws):
    aws.cache.expect("ROTATE")
    aws.rotate()
    first_rotation = aws.value(function.CURRENT)
    # By hand, an hour later: pods may still hold FIRST_TOKEN, so it must keep working.
    aws.now = aws.now + datetime.timedelta(hours=1)
    with pytest.raises(function.RotationError, match="Rotate again later"):
        aws.rotate()
    assert aws.cache.tokens == [FIRST_TOKEN, first_rotation]
    # A day later (the schedule did not run): SET the current one, then ROTATE in the next.
    aws.now = aws.now + RETIRE_AFTER
    aws.cache.expect("SET")
    aws.cache.expect("ROTATE")
    aws.rotate()
    assert aws.cache.strategies == ["ROTATE", "SET", "ROTATE"]
    assert aws.cache.tokens == [first_rotation, aws.value(function.CURRENT)]
    aws.cache.stubber.assert_no_pending_responses()


def test_the_handler_reads_its_group_and_grace_period_from_the_environment(monkeypatch):
    seen = {}
    monkeypatch.setenv("REPLICATION_GROUP_ID", GROUP)
    monkeypatch.setenv("RETIRE_AFTER_SECONDS", "86400")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setattr(function.Rotation, "run", lambda self, event, now: seen.update(rotation=self, event=event))
    function.handler({"Step": function.RETIRE_STEP, "SecretId": "arn"}, None)
    assert seen["rotation"].group_id == GROUP
    assert seen["rotation"].retire_after == datetime.timedelta(days=1) == RETIRE_AFTER
    assert seen["rotation"].token_works is function.token_works


def test_new_tokens_are_what_elasticache_accepts():
    tokens = {function.new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert len(token) == 64 and token.isascii() and token.isalnum()
        assert any(c.isupper() for c in token) and any(c.islower() for c in token) and any(c.isdigit() for c in token)


# --- logging in: AUTH over TLS ---------------------------------------------------------------


@pytest.fixture
def resp_server(tmp_path):
    """A TLS server on 127.0.0.1 that answers AUTH like a cache whose token is FIRST_TOKEN, and
    the client context that trusts its certificate; (port, context, commands it received)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve():
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                conn = server_context.wrap_socket(raw, server_side=True)
            except ssl.SSLError:  # the client refused the certificate
                raw.close()
                continue
            with conn:
                request = conn.recv(4096)
                received.append(request)
                expected = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(FIRST_TOKEN), FIRST_TOKEN.encode())
                conn.sendall(b"+OK\r\n" if request == expected else b"-WRONGPASS invalid username-password pair\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    yield listener.getsockname()[1], client_context, received
    listener.close()
    thread.join(timeout=5)


def test_token_works_logs_in_with_auth_over_tls(resp_server):
    port, context, received = resp_server
    assert function.token_works("localhost", port, FIRST_TOKEN, context) is True
    assert function.token_works("localhost", port, "SomeOtherToken0123456789", context) is False
    assert len(received) == 2


def test_token_works_refuses_a_server_it_cannot_verify(resp_server):
    port, _, received = resp_server
    with pytest.raises(ssl.SSLError):
        function.token_works("localhost", port, FIRST_TOKEN, ssl.create_default_context())
    assert received == []  # the token never left
