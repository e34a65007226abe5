"""Secrets Manager rotation function for the AUTH token of one ElastiCache (Valkey or Redis OSS)
replication group; deployed by components/data/cache_auth_rotation.py, one per cache.

The secret's value is the token itself. ElastiCache accepts two tokens while a rotation is under
way (AuthTokenUpdateStrategy ROTATE) and only the newer one once told so (SET). The app moves to
the new token in between, so no client is ever refused:

1. createSecret: a new random token becomes the secret's AWSPENDING version.
2. setSecret: ModifyReplicationGroup with the new token and ROTATE: the old and the new token
   both work from now on.
3. testSecret: once the group is `available` again, its primary and reader endpoints accept the
   new token (AUTH over TLS).
4. finishSecret: AWSCURRENT moves to the new token (AWSPREVIOUS to the old one). External Secrets
   brings it into the cluster within its refresh interval and the reloader rolls the pods.
5. retirePreviousToken, not a Secrets Manager step but an hourly schedule: once the current
   token is RETIRE_AFTER_SECONDS old, ModifyReplicationGroup with it and SET, and the old token
   stops working. The current version then carries the staging label SOLE_TOKEN, and later runs
   do nothing until the next rotation.

Any step may run twice (Secrets Manager retries a failed step; the schedule repeats), so each
first checks what is already done. A rotation starts only from a group that accepts one token:
if the previous rotation's token still works, setSecret retires it first when it is old enough
and fails otherwise (a rotation started by hand within RETIRE_AFTER_SECONDS of the last one).

Standard library and boto3 only (the Lambda Python runtime's); it never logs a token.
"""

from __future__ import annotations

import datetime
import logging
import os
import secrets
import socket
import ssl
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PENDING, CURRENT, PREVIOUS = "AWSPENDING", "AWSCURRENT", "AWSPREVIOUS"
SOLE_TOKEN = "PLEXICHAT_SOLE_TOKEN"
"""Staging label of the version whose token the cache alone accepts (its predecessor retired)."""
RETIRE_STEP = "retirePreviousToken"
"""The `Step` of the scheduled event that retires the previous token."""
PORT = 6379
TOKEN_LENGTH = 64
"""ElastiCache takes 16 to 128 printable characters; letters and digits only, so no client has to
escape anything."""
_ALPHABET = string.ascii_letters + string.digits
AVAILABLE_WAIT = {"Delay": 15, "MaxAttempts": 50}
"""How long a step waits for the group to finish a modification: 12.5 minutes, inside the
function's 15."""

TokenCheck = Callable[[str, int, str], bool]
"""(host, port, token) -> whether the cache there accepts AUTH with the token."""

log = logging.getLogger("cache_auth_rotation")
log.setLevel(logging.INFO)


class RotationError(Exception):
    """The step cannot complete; Secrets Manager marks the rotation failed and retries it."""


def handler(event: dict[str, Any], context: Any) -> None:
    """The Lambda entry point: a Secrets Manager rotation step, or the scheduled retirement."""
    import boto3  # here: the program imports this module for its constants, and needs no boto3

    Rotation(
        secretsmanager=boto3.client("secretsmanager"),
        elasticache=boto3.client("elasticache"),
        group_id=os.environ["REPLICATION_GROUP_ID"],
        retire_after=datetime.timedelta(seconds=int(os.environ["RETIRE_AFTER_SECONDS"])),
    ).run(event, datetime.datetime.now(datetime.UTC))


def new_token() -> str:
    """A random token of TOKEN_LENGTH letters and digits, with at least one of each kind (AWS
    asks for three character types)."""
    while True:
        token = "".join(secrets.choice(_ALPHABET) for _ in range(TOKEN_LENGTH))
        if all(any(test(c) for c in token) for test in (str.islower, str.isupper, str.isdigit)):
            return token


def token_works(host: str, port: int, token: str, context: ssl.SSLContext | None = None) -> bool:
    """Whether the cache at host:port accepts `AUTH token`, over TLS as the group requires."""
    context = context or ssl.create_default_context()
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as conn,
    ):
        conn.sendall(_command("AUTH", token))
        reply = _read_line(conn)
    if reply == b"+OK":
        return True
    if reply.startswith(b"-"):  # WRONGPASS, or ERR invalid password
        return False
    raise RotationError(f"unexpected reply to AUTH from {host}: {reply[:40]!r}")


def _command(*parts: str) -> bytes:
    """One command in the Redis serialization protocol (an array of bulk strings)."""
    encoded = [p.encode() for p in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded)


def _read_line(conn: ssl.SSLSocket) -> bytes:
    line = b""
    while not line.endswith(b"\r\n") and len(line) < 512:
        chunk = conn.recv(1)
        if not chunk:
            break
        line += chunk
    return line.removesuffix(b"\r\n")


@dataclass
class Rotation:
    """The steps, for one secret and the replication group whose token it holds."""

    secretsmanager: Any
    """A boto3 Secrets Manager client."""
    elasticache: Any
    """A boto3 ElastiCache client."""
    group_id: str
    retire_after: datetime.timedelta
    """How long after a rotation the previous token stops working: the app must have moved to the
    new one by then (External Secrets' refresh interval, then a rolling restart)."""
    token_works: TokenCheck = token_works

    def run(self, event: dict[str, Any], now: datetime.datetime) -> None:
        arn, step = event["SecretId"], event["Step"]
        if step == RETIRE_STEP:
            self.retire_previous(arn, now)
            return
        version = event["ClientRequestToken"]
        if not self._is_pending(arn, version):
            return
        if step == "createSecret":
            self.create_secret(arn, version)
        elif step == "setSecret":
            self.set_secret(arn, version, now)
        elif step == "testSecret":
            self.test_secret(arn, version)
        elif step == "finishSecret":
            self.finish_secret(arn, version)
        else:
            raise RotationError(f"unknown step {step!r}")

    def create_secret(self, arn: str, version: str) -> None:
        self._value(arn, VersionStage=CURRENT)  # there is a token to rotate from
        try:
            self._value(arn, VersionId=version, VersionStage=PENDING)
            log.info("createSecret: version %s already holds the new token", version)
        except self.secretsmanager.exceptions.ResourceNotFoundException:
            self.secretsmanager.put_secret_value(
                SecretId=arn, ClientRequestToken=version, SecretString=new_token(), VersionStages=[PENDING]
            )
            log.info("createSecret: new token in version %s", version)

    def set_secret(self, arn: str, version: str, now: datetime.datetime) -> None:
        pending = self._value(arn, VersionId=version, VersionStage=PENDING)
        primary = self._endpoints()[0]
        if self.token_works(primary, PORT, pending):
            log.info("setSecret: %s accepts the new token already", self.group_id)
            return
        if not self.retire_previous(arn, now, rotating=version):
            raise RotationError(
                f"{self.group_id} still accepts the token before the current one, which is younger "
                f"than {self.retire_after}: the app may still use the current one's predecessor. "
                "Rotate again later."
            )
        self._endpoints()  # a SET just now: wait until it is done
        self._modify(pending, "ROTATE")
        log.info("setSecret: %s accepts the current and the new token", self.group_id)

    def test_secret(self, arn: str, version: str) -> None:
        pending = self._value(arn, VersionId=version, VersionStage=PENDING)
        refused = [host for host in self._endpoints() if not self.token_works(host, PORT, pending)]
        if refused:
            raise RotationError(f"{', '.join(refused)} refuse the new token")
        log.info("testSecret: %s accepts the new token", self.group_id)

    def finish_secret(self, arn: str, version: str) -> None:
        current = self._versions(arn).current
        self.secretsmanager.update_secret_version_stage(
            SecretId=arn, VersionStage=CURRENT, MoveToVersionId=version, RemoveFromVersionId=current
        )
        # No version left pending: the rotation is over, by any reading of the labels.
        self.secretsmanager.update_secret_version_stage(SecretId=arn, VersionStage=PENDING, RemoveFromVersionId=version)
        log.info("finishSecret: version %s is current; %s becomes previous", version, current)

    def retire_previous(self, arn: str, now: datetime.datetime, rotating: str | None = None) -> bool:
        """SET the current token once it is `retire_after` old, if the previous one still works.
        True when the group accepts the current token alone (already, or from now on); False when
        it is too early, the group is busy, or another rotation is under way."""
        versions = self._versions(arn)
        if versions.pending not in (None, rotating):
            log.info("retire: a rotation is under way (version %s)", versions.pending)
            return False
        if SOLE_TOKEN in versions.stages[versions.current]:
            return True
        endpoints = self._endpoints(wait=False)
        if not endpoints:
            log.info("retire: %s is being modified; next time", self.group_id)
            return False
        if versions.previous is None or not self.token_works(
            endpoints[0], PORT, self._value(arn, VersionStage=PREVIOUS)
        ):
            self._label_sole(arn, versions)  # nothing to retire
            return True
        retire_at = versions.created[versions.current] + self.retire_after
        if now < retire_at:
            log.info("retire: the previous token stays valid until %s", retire_at.isoformat())
            return False
        self._modify(self._value(arn, VersionStage=CURRENT), "SET")
        self._label_sole(arn, versions)
        log.info("retire: %s accepts the current token only", self.group_id)
        return True

    # --- helpers ---------------------------------------------------------------------------------

    def _is_pending(self, arn: str, version: str) -> bool:
        """Whether `version` is the AWSPENDING version of a rotation still to finish."""
        metadata = self.secretsmanager.describe_secret(SecretId=arn)
        if not metadata.get("RotationEnabled"):
            raise RotationError(f"rotation is not enabled for {arn}")
        stages = metadata.get("VersionIdsToStages", {}).get(version)
        if stages is None:
            raise RotationError(f"version {version} of {arn} has no stage for rotation")
        if CURRENT in stages:
            log.info("version %s is current already: nothing to do", version)
            return False
        if PENDING not in stages:
            raise RotationError(f"version {version} of {arn} is not pending rotation")
        return True

    def _value(self, arn: str, **version: str) -> str:
        value: str = self.secretsmanager.get_secret_value(SecretId=arn, **version)["SecretString"]
        return value

    def _versions(self, arn: str) -> _Versions:
        listed = self.secretsmanager.list_secret_version_ids(SecretId=arn)["Versions"]
        return _Versions(
            stages={v["VersionId"]: v.get("VersionStages", []) for v in listed},
            created={v["VersionId"]: v["CreatedDate"] for v in listed},
        )

    def _endpoints(self, wait: bool = True) -> list[str]:
        """The primary's and the readers' addresses once the group is `available` (waiting for
        it, or empty if it is not and `wait` is off)."""
        if wait:
            self.elasticache.get_waiter("replication_group_available").wait(
                ReplicationGroupId=self.group_id, WaiterConfig=AVAILABLE_WAIT
            )
        (group,) = self.elasticache.describe_replication_groups(ReplicationGroupId=self.group_id)["ReplicationGroups"]
        if group["Status"] != "available":
            return []
        (nodes,) = group["NodeGroups"]  # cluster mode disabled: one node group
        return [e["Address"] for e in (nodes.get("PrimaryEndpoint"), nodes.get("ReaderEndpoint")) if e]

    def _modify(self, token: str, strategy: str) -> None:
        self.elasticache.modify_replication_group(
            ReplicationGroupId=self.group_id,
            AuthToken=token,
            AuthTokenUpdateStrategy=strategy,
            ApplyImmediately=True,
        )

    def _label_sole(self, arn: str, versions: _Versions) -> None:
        holder = next((v for v, stages in versions.stages.items() if SOLE_TOKEN in stages), None)
        self.secretsmanager.update_secret_version_stage(
            SecretId=arn,
            VersionStage=SOLE_TOKEN,
            MoveToVersionId=versions.current,
            **({"RemoveFromVersionId": holder} if holder else {}),
        )


@dataclass(frozen=True)
class _Versions:
    """The secret's versions: id -> staging labels, id -> creation time."""

    stages: dict[str, list[str]]
    created: dict[str, datetime.datetime]

    def _with(self, label: str) -> str | None:
        return next((v for v, stages in self.stages.items() if label in stages), None)

    @property
    def current(self) -> str:
        current = self._with(CURRENT)
        if current is None:
            raise RotationError("the secret has no AWSCURRENT version")
        return current

    @property
    def previous(self) -> str | None:
        return self._with(PREVIOUS)

    @property
    def pending(self) -> str | None:
        pending = self._with(PENDING)
        return None if pending == self._with(CURRENT) else pending
