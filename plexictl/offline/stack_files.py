"""Stack and project files, read the way the Pulumi CLI reads them.

The program sees its config exactly as the CLI passes it: a `{"plexichat:key": "text"}` map with
the project's defaults from Pulumi.yaml merged in, structured values as JSON text, and every
`secure:` value replaced by a placeholder and listed as secret (there is no key to decrypt it
offline). The YAML reader is strict: a key given twice is an error, not a silent override.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
"""This checkout: the Pulumi project `plexictl` renders unless told another (`--project-dir`)."""
FAKE_SECRET = "offline-placeholder-secret-0123456789"
"""Stands in for every `secure:` value: long enough for any token validator, clearly fake."""
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: 10x faster


class StackFileError(ValueError):
    """A stack or project file that cannot be used: missing, not YAML, a key given twice, or not
    a mapping. The message names the file (and the line) and is meant for the operator."""


class _StrictLoader(_YAML_LOADER):  # type: ignore[misc,valid-type]
    """The YAML loader, refusing a key given twice in one mapping. Plain YAML keeps the last
    value silently; in a stack file that hides an edit (two `weight:` lines, one of them live)."""


def _mapping_without_duplicates(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in first_line:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first given at line {first_line[key]}); a key may appear only once",
                key_node.start_mark,
            )
        first_line[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def load_yaml(text: str, name: str) -> Any:
    """Parse a stack or project file's text; StackFileError names `name` and the line."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        context = f" ({error.context})" if error.context else ""
        raise StackFileError(f"{name}{where}: {error.problem}{context}") from None
    except yaml.YAMLError as error:
        raise StackFileError(f"{name}: not valid YAML: {error}") from None


def stack_names(root: pathlib.Path = ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def stack_file_path(stack: str, root: pathlib.Path = ROOT) -> pathlib.Path:
    """`root/Pulumi.<stack>.yaml`, or StackFileError listing the stacks that exist."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise StackFileError(
            f"no stack {stack!r}: there is no {path.name} in {root}; "
            f"stacks here: {', '.join(stack_names(root)) or '(none)'}"
        )
    return path


def read_stack_file(path: pathlib.Path, text: str | None = None) -> dict[str, Any]:
    """A stack file as data (its `text` if given), checked to hold a `config:` mapping."""
    data = load_yaml(path.read_text() if text is None else text, path.name) or {}
    if not isinstance(data, dict) or not isinstance(data.get("config", {}), dict):
        raise StackFileError(
            f"{path.name}: must be a mapping with a `config:` mapping of `plexichat:<key>: <value>` entries"
        )
    return data


def project_file(root: pathlib.Path = ROOT) -> dict[str, Any]:
    path = root / "Pulumi.yaml"
    if not path.is_file():
        raise StackFileError(f"no Pulumi.yaml in {root}: not a Pulumi project")
    data = load_yaml(path.read_text(), path.name)
    if not isinstance(data, dict) or "name" not in data:
        raise StackFileError(f"{path.name}: must be a mapping with the project's `name:`")
    return data


def stack_config(
    stack: str, root: pathlib.Path = ROOT, stack_file: dict[str, Any] | None = None
) -> tuple[dict[str, str], list[str]]:
    """The config map and secret keys the Pulumi CLI would hand the program for `stack`.

    Project defaults from Pulumi.yaml come first, the stack file overrides them; structured values
    become JSON text; `secure:` values are replaced by a placeholder and listed as secret.
    """
    project = project_file(root)
    name = project["name"]
    config: dict[str, str] = {}
    for key, spec in (project.get("config") or {}).items():
        if isinstance(spec, dict) and "default" in spec:
            full_key = key if ":" in key else f"{name}:{key}"
            config[full_key] = _as_config_text(spec["default"])
    if stack_file is None:
        stack_file = read_stack_file(stack_file_path(stack, root))
    secret_keys: list[str] = []
    for key, value in (stack_file.get("config") or {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            secret_keys.append(key)
            value = FAKE_SECRET
        config[key] = _as_config_text(value)
    return config, secret_keys


def _as_config_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
