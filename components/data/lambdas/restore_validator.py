"""The data check of a restore test: deployed by components/data/restore_testing.py, one per
database, and called by EventBridge with the "Restore Job State Change" event of every restore
job of its restore testing plan that COMPLETED.

AWS Backup has restored the newest recovery point into a new instance `awsbackup-restore-test-...`
in the database's private subnets, with its security and parameter groups. The function:

1. makes sure the job is one of its plan's, and that it created such an instance
   (DescribeRestoreJob), and reports VALIDATING;
2. gives the instance's master user a new random password (ModifyDBInstance, applied at once):
   the snapshot keeps the password of its day, which RDS has rotated since, and a restore from a
   snapshot manages no password in Secrets Manager. The password lives only in this invocation;
3. logs in as the master user over TLS (the parameter group forces it) as soon as the instance
   accepts the new password, and runs CHECK_QUERY: the schema must be at exactly one Alembic
   revision, so the tables the migrations made are there and readable;
4. reports SUCCESSFUL or FAILED with PutRestoreValidationResult. On FAILED the invocation fails
   too, so the function's Errors alarm pages (a validation result raises no event of its own).

AWS Backup deletes the instance when the validation window ends. The invocation is not retried
(a retry would reset the password and report again): a failure is final for that month's test;
docs/runbook.md says how to run the check again by hand.

Standard library and boto3 only (the Lambda Python runtime's). It speaks PostgreSQL's protocol
itself (startup, SCRAM-SHA-256 or MD5 password login, simple query): the runtime has no driver.
It never logs a password.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import hmac
import logging
import os
import secrets
import socket
import ssl
import string
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "plexichat"
"""The app's schema (components/data/database_roles.py), where Alembic keeps its version table."""
CHECK_QUERY = f"SELECT count(*), max(version_num) FROM {SCHEMA}.alembic_version"
INSTANCE_PREFIX = "awsbackup-restore-test-"
"""The identifiers restore tests give to RDS instances; the function touches no other instance
(its role may modify no other either)."""
PASSWORD_LENGTH = 32
_ALPHABET = string.ascii_letters + string.digits  # RDS refuses / " @ and spaces: none of them here
RETRY_SECONDS = 15
MARGIN_SECONDS = 60
"""Kept back from the function's time limit to report the result."""

Check = Callable[[str, int, str, str, str], list[tuple[str | None, ...]]]
"""(host, port, user, password, database) -> the rows of CHECK_QUERY."""

log = logging.getLogger("restore_validator")
log.setLevel(logging.INFO)


class ValidationFailed(Exception):
    """The restored data failed the check; the result is reported, and the invocation fails."""


class LoginRefused(Exception):
    """The server refused the password (the new one is not in effect yet) or the connection."""


class QueryFailed(Exception):
    """The server answered the query with an error."""


def handler(event: dict[str, Any], context: Any) -> None:
    """The Lambda entry point: one restore job's COMPLETED event."""
    import boto3  # here: tests import this module without boto3 credentials or a region

    seconds_left = context.get_remaining_time_in_millis() / 1000 - MARGIN_SECONDS
    Validator(
        backup=boto3.client("backup"),
        rds=boto3.client("rds"),
        plan_arn=os.environ["RESTORE_TESTING_PLAN_ARN"],
        database=os.environ["DATABASE_NAME"],
    ).validate(event["detail"]["restoreJobId"], deadline=time.monotonic() + seconds_left)


def new_password() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(PASSWORD_LENGTH))


def _restored_instance(created_arn: str) -> str:
    """The identifier of the instance a restore test created: never anything else."""
    identifier = created_arn.rpartition(":db:")[2]
    if ":db:" not in created_arn or not identifier.startswith(INSTANCE_PREFIX):
        raise ValidationFailed(f"the job created {created_arn!r}, not an RDS instance {INSTANCE_PREFIX}*: not touched")
    return identifier


@dataclass
class Validator:
    backup: Any
    """A boto3 AWS Backup client."""
    rds: Any
    """A boto3 RDS client."""
    plan_arn: str
    """This function's restore testing plan: jobs of any other plan are not its business."""
    database: str
    """The database to log in to (the app's)."""
    check: Check = field(default=lambda *args: check_over_tls(*args))
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def validate(self, job_id: str, deadline: float) -> str:
        """Check the data of restore job `job_id`; the reported status ("" if the job is not
        one of the plan's completed ones)."""
        job = self.backup.describe_restore_job(RestoreJobId=job_id)
        if job.get("CreatedBy", {}).get("RestoreTestingPlanArn") != self.plan_arn or job.get("Status") != "COMPLETED":
            log.info("restore job %s: not a completed job of %s; nothing to check", job_id, self.plan_arn)
            return ""
        created = str(job.get("CreatedResourceArn", ""))
        self._report(job_id, "VALIDATING", f"checking {created}")
        try:
            message, status = self._check(_restored_instance(created), job, deadline), "SUCCESSFUL"
        except (ValidationFailed, LoginRefused, QueryFailed, OSError, self.rds.exceptions.ClientError) as error:
            # ClientError: e.g. the function's role may not modify the instance
            message, status = f"{created}: {error}", "FAILED"
        self._report(job_id, status, message)
        if status == "FAILED":
            raise ValidationFailed(message)
        return status

    def _check(self, identifier: str, job: dict[str, Any], deadline: float) -> str:
        password = new_password()
        (instance,) = self.rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
        change: dict[str, Any] = {"MasterUserPassword": password, "ApplyImmediately": True}
        if instance.get("MasterUserSecret"):  # RDS manages it: hand the password back to us
            change["ManageMasterUserPassword"] = False
        self.rds.modify_db_instance(DBInstanceIdentifier=identifier, **change)
        endpoint = instance["Endpoint"]
        rows = self._query_when_ready(
            endpoint["Address"], endpoint["Port"], instance["MasterUsername"], password, deadline
        )
        count, revision = rows[0] if len(rows) == 1 and len(rows[0]) == 2 else (None, None)
        if count != "1" or not revision:
            raise ValidationFailed(f"{CHECK_QUERY!r} returned {rows!r}: expected one Alembic revision")
        point = job.get("RecoveryPointCreationDate")
        taken = f" (recovery point of {point.isoformat()})" if isinstance(point, datetime.datetime) else ""
        log.info("%s: schema at Alembic revision %s%s", identifier, revision, taken)
        return f"schema at Alembic revision {revision}{taken}"

    def _query_when_ready(self, host: str, port: int, user: str, password: str, deadline: float) -> list:
        """CHECK_QUERY once the instance takes the new password (ModifyDBInstance returns before
        it does), until the deadline."""
        while True:
            try:
                return self.check(host, port, user, password, self.database)
            except (LoginRefused, OSError) as error:
                if self.clock() + RETRY_SECONDS > deadline:
                    raise LoginRefused(f"no login to {host} before the deadline: {error}") from error
                log.info("%s does not take the new password yet (%s); again in %d s", host, error, RETRY_SECONDS)
                self.sleep(RETRY_SECONDS)

    def _report(self, job_id: str, status: str, message: str) -> None:
        log.info("restore job %s: %s: %s", job_id, status, message)
        self.backup.put_restore_validation_result(
            RestoreJobId=job_id, ValidationStatus=status, ValidationStatusMessage=message[:1000]
        )


# --- PostgreSQL's frontend/backend protocol 3.0, the little this check needs ---------------------

PROTOCOL_3_0 = 196608
SSL_REQUEST = 80877103
AUTH_OK, AUTH_MD5, AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL = 0, 5, 10, 11, 12
SCRAM = "SCRAM-SHA-256"


def tls_context() -> ssl.SSLContext:
    """TLS without verifying the certificate: the RDS CA bundle is not in the runtime, and the
    instance is a throwaway copy reached inside the VPC with a password that lives for minutes."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def check_over_tls(host: str, port: int, user: str, password: str, database: str) -> list[tuple[str | None, ...]]:
    """CHECK_QUERY's rows, over TLS (what RDS requires of every connection here)."""
    return run_check(host, port, user, password, database, tls=tls_context())


def run_check(
    host: str, port: int, user: str, password: str, database: str, tls: ssl.SSLContext | None
) -> list[tuple[str | None, ...]]:
    """CHECK_QUERY's rows, as text. `tls` None: plain TCP (a local test server only)."""
    with contextlib.ExitStack() as closing:
        conn = closing.enter_context(socket.create_connection((host, port), timeout=10))
        if tls is not None:
            conn.sendall(struct.pack("!ii", 8, SSL_REQUEST))
            if conn.recv(1) != b"S":
                raise LoginRefused("the server does not speak TLS")
            conn = closing.enter_context(tls.wrap_socket(conn, server_hostname=host))
        wire = _Wire(conn)
        wire.login(user, password, database)
        rows = wire.query(CHECK_QUERY)
        wire.send(b"X", b"")
        return rows


@dataclass
class _Wire:
    conn: socket.socket
    buffer: bytes = b""

    def send(self, kind: bytes, payload: bytes) -> None:
        self.conn.sendall(kind + struct.pack("!i", len(payload) + 4) + payload)

    def receive(self) -> tuple[bytes, bytes]:
        header = self._read(5)
        kind, length = header[:1], struct.unpack("!i", header[1:])[0]
        return kind, self._read(length - 4)

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise LoginRefused("the server closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def login(self, user: str, password: str, database: str) -> None:
        params = b"".join(f"{k}\0{v}\0".encode() for k, v in (("user", user), ("database", database))) + b"\0"
        self.conn.sendall(struct.pack("!ii", len(params) + 8, PROTOCOL_3_0) + params)
        scram: _Scram | None = None
        while True:
            kind, body = self.receive()
            if kind == b"E":
                fields = _error_fields(body)
                error = f"{fields.get('C')}: {fields.get('M')}"
                # Class 28, invalid authorization (28P01 a wrong password): the new one is not in effect yet.
                raise LoginRefused(error) if fields.get("C", "").startswith("28") else QueryFailed(error)
            if kind == b"Z":
                return
            if kind != b"R":
                continue  # ParameterStatus, BackendKeyData, notices
            code = struct.unpack("!i", body[:4])[0]
            if code == AUTH_MD5:
                self.send(b"p", _md5_response(user, password, salt=body[4:8]))
            elif code == AUTH_SASL:
                if SCRAM.encode() not in body[4:].split(b"\0"):
                    raise LoginRefused(f"the server offers no {SCRAM}")
                scram = _Scram(password)
                first = scram.client_first()
                self.send(b"p", SCRAM.encode() + b"\0" + struct.pack("!i", len(first)) + first)
            elif code == AUTH_SASL_CONTINUE and scram is not None:
                self.send(b"p", scram.client_final(body[4:]))
            elif code == AUTH_SASL_FINAL and scram is not None:
                scram.verify_server(body[4:])
            elif code != AUTH_OK:
                raise LoginRefused(f"authentication method {code} is not supported")

    def query(self, sql: str) -> list[tuple[str | None, ...]]:
        self.send(b"Q", sql.encode() + b"\0")
        rows, failure = [], None
        while True:
            kind, body = self.receive()
            if kind == b"D":
                rows.append(_data_row(body))
            elif kind == b"E":
                fields = _error_fields(body)
                failure = f"{fields.get('C')}: {fields.get('M')}"
            elif kind == b"Z":
                if failure:
                    raise QueryFailed(failure)
                return rows


@dataclass
class _Scram:
    """SCRAM-SHA-256 without channel binding (RFC 5802, RFC 7677), as PostgreSQL runs it."""

    password: str
    nonce: str = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(18)).decode())
    expected_signature: bytes = b""

    def client_first(self) -> bytes:
        return f"n,,{self._first_bare()}".encode()

    def _first_bare(self) -> str:
        return f"n=,r={self.nonce}"  # PostgreSQL takes the user from the startup message

    def client_final(self, server_first: bytes) -> bytes:
        attributes = dict(part.split("=", 1) for part in server_first.decode().split(","))
        if not attributes["r"].startswith(self.nonce):
            raise LoginRefused("the server's SCRAM nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac(
            "sha256", self.password.encode(), base64.b64decode(attributes["s"]), int(attributes["i"])
        )
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        without_proof = f"c=biws,r={attributes['r']}"  # biws: base64 of the "n,," header
        message = f"{self._first_bare()},{server_first.decode()},{without_proof}".encode()
        signature = hmac.digest(hashlib.sha256(client_key).digest(), message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self.expected_signature = hmac.digest(hmac.digest(salted, b"Server Key", "sha256"), message, "sha256")
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify_server(self, server_final: bytes) -> None:
        verifier = dict(part.split("=", 1) for part in server_final.decode().split(","))
        if not hmac.compare_digest(base64.b64decode(verifier.get("v", "")), self.expected_signature):
            raise LoginRefused("the server's SCRAM signature is wrong")


def _md5_response(user: str, password: str, salt: bytes) -> bytes:
    """PostgreSQL's MD5 password message: md5(md5(password + user) + salt), hex, prefixed."""
    inner = hashlib.md5((password + user).encode(), usedforsecurity=False).hexdigest()
    return b"md5" + hashlib.md5(inner.encode() + salt, usedforsecurity=False).hexdigest().encode() + b"\0"


def _data_row(body: bytes) -> tuple[str | None, ...]:
    (count,), offset, values = struct.unpack("!h", body[:2]), 2, []
    for _ in range(count):
        (length,) = struct.unpack("!i", body[offset : offset + 4])
        offset += 4
        values.append(None if length < 0 else body[offset : offset + length].decode())
        offset += max(length, 0)
    return tuple(values)


def _error_fields(body: bytes) -> dict[str, str]:
    return {part[:1].decode(): part[1:].decode(errors="replace") for part in body.split(b"\0") if part}
