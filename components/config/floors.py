"""The production floors: what a stack with `environment: production` must have, in one table.

A floor is named after the setting it bounds (`database.deletionProtection`); the name is also
the key of its override (`plexichat:productionFloorOverrides: {database.deletionProtection:
"<reason>"}`). Two enforcers read this table: the settings validator (`StackSettings`, before
any resource exists) and the policy pack (`policy/__main__.py` asks `required` which floors a
stack must meet, and its rules check them on the resources).

The stack's role selects the floor set. Every stack is `active` today. A DR standby (the DR
issue: `plexichat:dr.role: standby`) must not lose data or its guarantees, but runs no traffic,
so it keeps the protection floors and drops the capacity ones; promoted (`dr.role: active`) it
gets them all, as a DR primary (`dr.role: primary`) has. The hook is `StackSettings.floor_role`
(and `production_floors` in policy/__main__.py, which reads the same config). Encryption is no
floor: it is a constant of the program, checked by the pack's encryption rules in every stack.

Pure: the standard library only, so the policy pack's own venv (no pydantic) imports it too.
The predicates read a `StackSettings` by attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from components.config.stack import StackSettings

PRODUCTION = "production"
ENVIRONMENTS = ("production", "staging", "development")
"""The values of `plexichat:environment`. Only production has floors."""

Role = Literal["active", "standby"]


@dataclass(frozen=True)
class Floor:
    name: str
    """The setting's key path under `plexichat:`, and the override's key."""
    requirement: str
    """What the setting must be, as the error says it: `true`, `at least 2`, `block`."""
    why: str
    """What the floor guards against, for the docs and the error."""
    setting: Callable[[StackSettings], Any]
    holds: Callable[[Any], bool]

    def value(self, settings: StackSettings) -> Any:
        return self.setting(settings)

    def met_by(self, settings: StackSettings) -> bool:
        return self.holds(self.setting(settings))


def _on(value: Any) -> bool:
    return value is True


def _at_least_2(value: Any) -> bool:
    return isinstance(value, int) and value >= 2


FLOORS: tuple[Floor, ...] = (
    Floor(
        "database.deletionProtection",
        "true",
        "RDS refuses to delete the primary and its replicas",
        lambda s: s.database.deletion_protection,
        _on,
    ),
    Floor(
        "dataProtection.protect",
        "true",
        "Pulumi refuses to delete or replace the data stores, their keys, secrets and log groups",
        lambda s: s.data_protection.protect,
        _on,
    ),
    Floor(
        "backups.vaultLock",
        "true",
        "no recovery point can be deleted before its retention ends",
        lambda s: s.backups.vault_lock,
        _on,
    ),
    Floor(
        "database.multiAz",
        "true",
        "a synchronous standby takes over when the primary's AZ fails",
        lambda s: s.database.multi_az,
        _on,
    ),
    Floor(
        "database.readReplicas",
        "at least 2",
        "reads survive the loss of a replica",
        lambda s: s.database.read_replicas,
        _at_least_2,
    ),
    Floor(
        "cache.multiAz",
        "true",
        "the cache fails over to another AZ",
        lambda s: s.cache.multi_az,
        _on,
    ),
    Floor(
        "cache.nodes",
        "at least 2",
        "a replica to fail over to",
        lambda s: s.cache.nodes,
        _at_least_2,
    ),
    Floor(
        "workloads.web.minReplicas",
        "at least 2",
        "the web tier survives a pod or node loss",
        lambda s: s.workloads["web"].min_replicas,
        _at_least_2,
    ),
    Floor(
        "ingress.waf.mode",
        "block",
        "the WAF stops the attacks it detects instead of counting them",
        lambda s: s.ingress.waf.mode,
        lambda mode: mode == "block",
    ),
)

BY_NAME: Mapping[str, Floor] = {floor.name: floor for floor in FLOORS}

_PROTECTION = frozenset({"database.deletionProtection", "dataProtection.protect", "backups.vaultLock"})
FLOORS_BY_ROLE: Mapping[Role, frozenset[str]] = {
    "active": frozenset(BY_NAME),
    # A standby holds the data (its replica, its backups) but serves no traffic until promoted.
    "standby": _PROTECTION,
}
"""Which floors a production stack of each role must meet. Every stack is `active` until the DR
issue reads `plexichat:dr.role`."""


def applicable(environment: str | None, role: Role = "active") -> frozenset[str]:
    """The floors a stack of this environment and role is held to (none outside production)."""
    return FLOORS_BY_ROLE[role] if environment == PRODUCTION else frozenset()


def required(environment: str | None, overrides: Collection[str] = (), role: Role = "active") -> frozenset[str]:
    """The floors a stack must meet: the applicable ones it does not override."""
    return applicable(environment, role) - frozenset(overrides)


def unmet(settings: StackSettings, role: Role = "active") -> list[Floor]:
    """The required floors the settings fall below, in table order."""
    names = required(settings.environment, settings.production_floor_overrides, role)
    return [floor for floor in FLOORS if floor.name in names and not floor.met_by(settings)]
