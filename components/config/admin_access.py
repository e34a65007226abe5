"""Administrative access: the break-glass path into the database (docs/admin-access.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from components.config.base import DnsLabel, Model, int_range


class BreakGlassSettings(Model):
    """A database session for an incident: a short-lived pod in the app namespace that logs in as
    `plexichat_break_glass` with an IAM token, started by `plexictl break-glass` with a reason."""

    enabled: bool = False
    """Whether the path exists at all. Default false: off unless a stack turns it on (staging and
    prod do; dev has none)."""
    access: Literal["read", "readWrite"] = "read"
    """What the session may do in the app schema: `read` (SELECT only, and every transaction
    read-only) or `readWrite` (the app's row changes too). Never schema changes: those are
    migrations. Default read."""
    kubernetes_group: DnsLabel = "plexichat-break-glass"
    """The Kubernetes group that may start and attach to a session pod in the app namespace; the
    cluster's EKS access entry maps the on-call's SSO role to it, at need. Default
    plexichat-break-glass."""
    session_minutes: Annotated[int, int_range(5, 240, "a number of minutes")] = 60
    """The session pod ends itself after this long (5..240). Default 60."""


class AdminAccessSettings(Model):
    """Who may reach the stack's internals by hand, and how (docs/admin-access.md)."""

    break_glass: BreakGlassSettings = BreakGlassSettings()
    """The database break-glass path. Default off."""
