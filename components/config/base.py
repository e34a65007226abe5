"""Shared building blocks of the settings models: the base model and the constrained value types.

Each type's error message says what is allowed, in the user's words.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
)
from pydantic.alias_generators import to_camel

from components.config import versions

NAMESPACE = "plexichat"

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_IMAGE_REPOSITORY = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$")
_CPU = re.compile(r"^([1-9][0-9]*m|[0-9]+(\.[0-9]+)?)$")
_AWS_ID = {
    "vpc": re.compile(r"^vpc-[0-9a-f]{8,17}$"),
    "subnet": re.compile(r"^subnet-[0-9a-f]{8,17}$"),
    "sg": re.compile(r"^sg-[0-9a-f]{8,17}$"),
}


class Model(BaseModel):
    """Base of every settings model: camelCase keys, unknown keys are errors, values immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,  # the docstring under a field is its documentation
    )


# ---------------------------------------------------------------------------------------------
# Reusable constrained types. Each error message says what is allowed, in the user's words.


def int_range(low: int, high: int, what: str) -> BeforeValidator:
    """The validator of an integer setting in [low, high]: `Annotated[int, int_range(...)]`."""

    def check(value: Any) -> int:
        # One message for every failure (wrong type, fraction, out of range) that names the range.
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be {what} from {low} to {high}")
        return value

    return BeforeValidator(check)


def pattern(regex: re.Pattern[str], what: str) -> AfterValidator:
    """The validator of a text setting matching `regex`: `Annotated[str, pattern(...)]`."""

    def check(value: str) -> str:
        if not regex.match(value):
            raise ValueError(f"must be {what}")
        return value

    return AfterValidator(check)


Percent = Annotated[int, int_range(0, 100, "an integer percent")]
Replicas = Annotated[int, int_range(1, 100, "a whole number of pods")]
Seconds = Annotated[int, int_range(1, 3600, "a number of seconds")]
Port = Annotated[int, int_range(1024, 65535, "an unprivileged port number")]
DnsLabel = Annotated[str, pattern(DNS_LABEL, "a DNS label: lowercase letters, digits and '-', at most 63 characters")]
DomainName = Annotated[str, pattern(_DNS_NAME, "a lowercase DNS name such as app.plexichat.com")]
Cpu = Annotated[str, pattern(_CPU, "a Kubernetes CPU quantity such as 250m or 1")]
ImageRepository = Annotated[str, pattern(_IMAGE_REPOSITORY, "an image repository such as ghcr.io/plexichat/plexichat")]
HttpPath = Annotated[str, pattern(re.compile(r"^/[A-Za-z0-9/._-]*$"), "an absolute URL path such as /healthz")]
VpcId = Annotated[str, pattern(_AWS_ID["vpc"], "a VPC id such as vpc-0123456789abcdef0")]
SubnetId = Annotated[str, pattern(_AWS_ID["subnet"], "a subnet id such as subnet-0123456789abcdef0")]
SecurityGroupId = Annotated[str, pattern(_AWS_ID["sg"], "a security group id such as sg-0123456789abcdef0")]


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}
Duration = Annotated[
    str, pattern(re.compile(r"^[1-9][0-9]*[smh]$"), "a duration such as 30s, 5m or 2h (one unit: s, m or h)")
]
"""A Prometheus-style duration with one unit, as people write them in stack files."""


def duration_seconds(duration: str) -> int:
    """`5m` -> 300. The setting was validated as a `Duration`."""
    return int(duration[:-1]) * _DURATION_UNITS[duration[-1]]


def _check_version(value: str) -> str:
    # The one definition of a version (components/versions.py); the message lists its forms.
    try:
        versions.parse(value)
    except versions.InvalidVersion:
        raise ValueError(f"must be {versions.ALLOWED_FORMS}") from None
    return value


Version = Annotated[str, AfterValidator(_check_version)]


def _check_cidr(value: str) -> str:
    try:
        ipaddress.IPv4Network(value)
    except ValueError:
        raise ValueError("must be an IPv4 CIDR block such as 10.0.0.0/16") from None
    return value


Cidr = Annotated[str, AfterValidator(_check_cidr)]

PRIVATE_RANGES = tuple(ipaddress.IPv4Network(c) for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
"""RFC 1918."""
CGNAT_RANGE = ipaddress.IPv4Network("100.64.0.0/10")
"""RFC 6598 shared address space: not routed on the internet, and the range EKS custom
networking gives pods (as a secondary VPC CIDR), so a VPC may use it too."""


def _check_private_cidr(value: str) -> str:
    network = ipaddress.IPv4Network(_check_cidr(value))
    if not any(network.subnet_of(r) for r in (*PRIVATE_RANGES, CGNAT_RANGE)):
        raise ValueError(
            "must be a private range: inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 (RFC 1918), "
            "or 100.64.0.0/10 (the CGNAT range EKS supports for pods); a public range would open the "
            "data ports to the internet"
        )
    return value


PrivateCidr = Annotated[str, AfterValidator(_check_private_cidr)]
"""An IPv4 CIDR block inside RFC 1918 or 100.64.0.0/10."""


_SYSTEM_NAMESPACES = ("default", "istio-system")


def _check_app_namespace(value: str) -> str:
    if value in _SYSTEM_NAMESPACES or value.startswith("kube-"):
        raise ValueError(
            "must be the app's own namespace, not default, istio-system or kube-* (the program labels "
            "it Pod Security restricted and denies all traffic in it by default)"
        )
    return value


AppNamespace = Annotated[
    str,
    pattern(DNS_LABEL, "a DNS label: lowercase letters, digits and '-', at most 63 characters"),
    AfterValidator(_check_app_namespace),
]
"""The namespace the program owns: a DNS label that is no system namespace."""


def _check_relative_directory(value: str) -> str:
    path = PurePosixPath(value)
    if not value.strip() or path.is_absolute() or "\\" in value or value.startswith("~") or ".." in path.parts:
        raise ValueError(
            "must be a relative path inside the project without '..', such as rendered/manifests "
            "(this mode writes every manifest, Secrets included, in plain text)"
        )
    return value


RelativeDirectory = Annotated[str, AfterValidator(_check_relative_directory)]


def _check_non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


NonBlank = Annotated[str, AfterValidator(_check_non_blank)]

# A host with a dot (or localhost), an optional port and path: never a bare name, which a
# container runtime would read as a Docker Hub namespace.
# A host is a DNS name with a top-level domain, localhost, or an IPv4 address (a private registry).
_REGISTRY = re.compile(
    r"^(localhost|[a-z0-9]+([.-][a-z0-9]+)*\.[a-z]{2,}|[0-9]{1,3}(\.[0-9]{1,3}){3})(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
)
Registry = Annotated[
    str,
    pattern(_REGISTRY, "a registry host with an optional path, such as ghcr.io/plexichat (no scheme, no trailing /)"),
]


def registry_allows(registry: str, repository: str) -> bool:
    """Whether `repository` lies under `registry` on a host and path boundary: ghcr.io/plexichat
    allows ghcr.io/plexichat/app, not ghcr.io/plexichat-evil/app."""
    return repository == registry or repository.startswith(registry + "/")


class FieldError(ValueError):
    """A model-level check that blames one field, so the error names that field's key path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class FieldErrors(ValueError):
    """Several model-level problems found at once, each naming its field (all are reported)."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e}" for e in errors))
        self.errors = errors


# The values CloudWatch Logs accepts for a log group's retention.
LogRetentionDays = Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653]


def float_range(low: float, high: float, what: str) -> BeforeValidator:
    """The validator of a number setting in [low, high]: `Annotated[float, float_range(...)]`."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ValueError(f"must be {what} from {low} to {high}")
        return float(value)

    return BeforeValidator(check)
