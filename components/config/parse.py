"""Parsing the config map the Pulumi CLI hands the program, and reporting every problem at once."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError

from components.config.base import NAMESPACE, FieldError, FieldErrors
from components.config.release import (
    STRATEGIES,
    BlueGreenRelease,
    CanaryRelease,
    RollingRelease,
)
from components.config.stack import StackSettings

_TOP_LEVEL_KEYS = {field.alias or name: name for name, field in StackSettings.model_fields.items()}
# Keys whose stack-file value is a YAML scalar: the CLI passes them as plain text, not JSON.
# Secrets must be set with `pulumi config set --secret`; their values are never shown in errors.


def _holds_secret(annotation: Any) -> bool:
    """Whether a field's type is a SecretStr (possibly constrained, possibly optional)."""
    return annotation is SecretStr or any(_holds_secret(arg) for arg in get_args(annotation))


_SECRET_KEYS = {
    key for key, name in _TOP_LEVEL_KEYS.items() if _holds_secret(StackSettings.model_fields[name].annotation)
}
_SCALAR_KEYS = {"domain", "namespace", "imageRepository"} | _SECRET_KEYS  # "1234" stays text


class ConfigError(ValueError):
    """Invalid stack config: every problem, as (key path, what is wrong and what is allowed).
    `__main__.py` ends the program with it as a `pulumi.RunError` (no traceback)."""

    def __init__(self, stack: str, problems: list[tuple[str, str]]) -> None:
        self.problems = sorted(set(problems))
        super().__init__(
            f"invalid configuration for stack '{stack}' (Pulumi.{stack}.yaml); nothing was changed:\n"
            + "\n".join(f"  - {key}: {message}" for key, message in self.problems)
        )


def parse_stack_config(raw: Mapping[str, Any], stack: str, secret_keys: Collection[str] = ()) -> StackSettings:
    """Validate the `plexichat:` part of a stack's config map, or raise one ConfigError.

    `raw` is the map the CLI hands the program: `{"plexichat:release": "<json text>", ...}`.
    Keys of other namespaces (`aws:region`, `kubernetes:context`) are not ours and are ignored.
    `secret_keys` are the full keys the CLI marks secret; a key of `_SECRET_KEYS` must be one.
    """
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    bare: set[str] = set()
    for full_key, text in raw.items():
        namespace, colon, key = full_key.partition(":")
        if not colon:  # `release:` for `plexichat:release:`; the Pulumi CLI refuses it too
            meant = f"{NAMESPACE}:{full_key}" if full_key in _TOP_LEVEL_KEYS else full_key
            problems.append(
                (
                    meant,
                    f"written without its namespace as `{full_key}:`; "
                    f"a stack file key is `<namespace>:<key>`, here `{NAMESPACE}:{full_key}:`",
                )
            )
            bare.add(meant)
            continue
        if namespace != NAMESPACE:
            continue
        if key not in _TOP_LEVEL_KEYS:
            problems.append(
                (
                    full_key,
                    "unknown key; allowed keys are " + ", ".join(f"{NAMESPACE}:{k}" for k in sorted(_TOP_LEVEL_KEYS)),
                )
            )
            continue
        values[key] = _decode(text) if key not in _SCALAR_KEYS else text
        if key in _SECRET_KEYS and full_key not in secret_keys:
            problems.append((full_key, f"must be a secret; set it with `pulumi config set --secret {full_key} ...`"))
    settings: StackSettings | None = None
    try:
        settings = StackSettings.model_validate(values)
    except ValidationError as error:
        described = (problem for e in error.errors() for problem in _problems(e))
        # A required key written without its namespace is that one problem, not two.
        problems.extend(p for p in described if p[0] not in bare)
    if problems or settings is None:
        raise ConfigError(stack, problems)
    return settings


def _decode(text: Any) -> Any:
    """Structured values arrive as JSON text; a plain string that is not JSON stays a string."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


_RELEASE_MODELS = {
    get_args(model.model_fields["strategy"].annotation)[0]: model
    for model in (RollingRelease, CanaryRelease, BlueGreenRelease)
}
_RELEASE_KEYS = {
    strategy: {field.alias or name for name, field in model.model_fields.items()}
    for strategy, model in _RELEASE_MODELS.items()
}


def _allowed_keys(loc: list[Any], strategy: str | None) -> list[str]:
    """The keys allowed next to the unknown key at `loc` (the user's path), if known: inside the
    release block, those of the strategy the user chose."""
    if loc[0] == "release" and strategy is None:
        return []
    annotation: Any = _RELEASE_MODELS[strategy] if strategy else StackSettings
    for part in loc[1:-1] if strategy else loc[:-1]:
        if get_origin(annotation) in (dict, list):
            annotation = get_args(annotation)[-1]  # `part` is a workload name or a list index
            continue
        model = _model_in(annotation)
        fields = {f.alias or n: f for n, f in model.model_fields.items()} if model else {}
        if part not in fields:
            return []
        annotation = fields[part].annotation
    model = _model_in(annotation)
    return sorted(f.alias or n for n, f in model.model_fields.items()) if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The settings model an annotation holds: `Model` or `Model | None`."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _problems(error: Mapping[str, Any]) -> list[tuple[str, str]]:
    """One pydantic error as the problems it holds: several for a model check's FieldErrors."""
    found = (error.get("ctx") or {}).get("error")
    if isinstance(found, FieldErrors):
        return [_describe({**error, "ctx": {"error": e}, "msg": str(e)}) for e in found.errors]
    return [_describe(error)]


def _describe(error: Mapping[str, Any]) -> tuple[str, str]:
    """One pydantic error as (key path, message in the user's words)."""
    loc = [part for part in error["loc"] if part != "[key]"]  # a bad mapping key: the key is named
    kind = error["type"]
    message = error["msg"].removeprefix("Value error, ")
    strategy = loc[1] if len(loc) > 1 and loc[0] == "release" and loc[1] in STRATEGIES else None
    if loc and loc[0] == "release":
        if kind.startswith("union_tag"):
            message = "must be one of " + ", ".join(STRATEGIES)
            if kind == "union_tag_invalid":
                message += f" (got {error['input'].get('strategy')!r})"
            loc = ["release", "strategy"]
        elif strategy is not None:
            del loc[1]  # pydantic puts the union tag (`canary`) in the path; users never write it
    context = error.get("ctx") or {}
    if kind in ("model_attributes_type", "dict_type", "model_type"):
        message = "must be a mapping of keys to values"
        if loc == ["release"]:
            message += " with a strategy (" + ", ".join(STRATEGIES) + ") and its versions"
    elif kind == "literal_error":
        message = "must be " + str(context.get("expected", "")).replace("'", "")
    field_error = context.get("error")
    if isinstance(field_error, FieldError):
        loc.append(field_error.field)
    key = f"{NAMESPACE}:" + ".".join(str(p) for p in loc) if loc else f"{NAMESPACE}"
    if kind == "missing":
        # A top-level choice says its choices: `plexichat:environment` is set by hand, once.
        annotation = StackSettings.model_fields[_TOP_LEVEL_KEYS[loc[0]]].annotation if len(loc) == 1 else None
        if get_origin(annotation) is Literal:
            return key, "required, but not set; one of " + ", ".join(get_args(annotation))
        return key, "required, but not set"
    if kind == "extra_forbidden":
        if len(loc) == 2 and strategy is not None:
            owners = [name for name in STRATEGIES if loc[1] in _RELEASE_KEYS[name]]
            if owners:  # a leftover from another strategy, e.g. `version` on a canary stack
                return key, (
                    f"belongs to strategy {' and '.join(owners)}, not {strategy}; remove "
                    f"it (pulumi config rm --path release.{loc[1]})"
                )
        allowed = _allowed_keys(loc, strategy)
        return key, (
            "unknown key (check the spelling"
            + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
            + "; see docs/configuration.md)"
        )
    shown = error.get("input")
    if loc and loc[0] in _SECRET_KEYS:
        return key, f"{message} (value hidden: it is a secret)"
    if kind.startswith("union_tag") or isinstance(shown, (dict, list)):
        return key, message
    return key, f"{message} (got {shown!r})"
