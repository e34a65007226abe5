"""What a program imports, read from its source without running it.

A process caches the first `components` it imports, so the program of one revision cannot be
imported where another revision will render. Its dependencies can: the provider SDKs (most of a
render's time is importing the pulumi-aws and pulumi-kubernetes modules the program uses) are the
same for every revision. `import_dependencies` imports them (resolving `aws.rds.Instance` through
the SDK's lazy modules, as the program would) and not the program; `import_program` then imports
the program's own packages from its root, in a process that may hold another revision's.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import pathlib
import re
import sys
import types
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgramImports:
    local: tuple[str, ...]
    """Top-level packages and modules of the program's own (`components`), found in its root."""
    entry_modules: tuple[str, ...]
    """The program's own modules `__main__.py` imports, in its order (`components.platform`)."""
    attribute_paths: tuple[tuple[str, ...], ...]
    """Every other module the program imports, with the attributes it reads from it:
    `("pulumi_aws", "rds", "Instance")` for `import pulumi_aws as aws` and `aws.rds.Instance`."""


def import_dependencies(root: pathlib.Path) -> None:
    """Import what the program at `root` imports, except the program itself."""
    failed: set[tuple[str, ...]] = set()
    for path in scan(root).attribute_paths:
        if not any(path[: len(prefix)] == prefix for prefix in failed):
            failed |= _resolve(path)


def import_program(root: pathlib.Path) -> None:
    """Import the program's own modules from `root`, first dropping another root's copies."""
    imports = scan(root)
    for name in imports.local:
        if name in sys.modules and not _is_from(sys.modules[name], root):
            for loaded in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
                del sys.modules[loaded]
    sys.path.insert(0, str(root))
    try:
        for name in imports.entry_modules:
            importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a broken revision fails (and says why) when it runs
        pass
    finally:
        sys.path.remove(str(root))


def owns_program(root: pathlib.Path) -> bool:
    """Whether this process has imported no other root's copy of the program's modules."""
    return all(name not in sys.modules or _is_from(sys.modules[name], root) for name in scan(root).local)


def fingerprint(root: pathlib.Path) -> str:
    """A digest of the program's own files (`__main__.py`, the project file, its packages): two
    roots with one fingerprint run the same program, wherever they are."""
    files = [root / "__main__.py", root / "Pulumi.yaml"]
    for name in scan(root).local:
        package = root / name
        files += sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        files += [root / f"{name}.py"] if not package.is_dir() else []
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        digest.update(file.read_bytes() if file.is_file() else b"(missing)")
    return digest.hexdigest()


@functools.cache
def scan(root: pathlib.Path) -> ProgramImports:
    """`__main__.py`'s imports, and those of every package of the root it reaches."""
    entry, paths = _file_imports(root / "__main__.py", root)
    local = {name.split(".")[0] for name in entry}
    scanned: set[str] = set()
    while local - scanned:
        package = min(local - scanned)
        scanned.add(package)
        for file in sorted((root / package).rglob("*.py")) or [root / f"{package}.py"]:
            own, external = _file_imports(file, root)
            local |= {name.split(".")[0] for name in own}
            paths |= external
    return ProgramImports(tuple(sorted(local)), tuple(dict.fromkeys(entry)), tuple(sorted(paths)))


_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w. \t,]+)", re.MULTILINE)
_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+(\w[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]*)", re.MULTILINE)


def _file_imports(file: pathlib.Path, root: pathlib.Path) -> tuple[list[str], set[tuple[str, ...]]]:
    """The program's own modules a file imports (in order), and the paths it reads from other
    modules. Read with patterns, not parsed: ten times faster, and a miss costs only time (the
    module then loads in the child, when the program reads it)."""
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError):
        return [], set()
    own: list[tuple[int, str]] = []
    external: set[tuple[str, ...]] = set()
    bound: dict[str, tuple[str, ...]] = {}  # a name in the file -> the module path it stands for
    for match in _IMPORT.finditer(text):
        for module, alias in _names(match[1]):
            path = tuple(module.split("."))
            if _is_local(path[0], root):
                own.append((match.start(), module))
                continue
            external.add(path)
            bound[alias or path[0]] = path if alias else path[:1]
    for match in _FROM_IMPORT.finditer(text):
        path = tuple(match[1].split("."))
        if _is_local(path[0], root):
            own.append((match.start(), match[1]))
            continue
        for name, alias in _names(match[2]):
            bound[alias or name] = (*path, name)
            external.add((*path, name))
    if bound:
        uses = re.compile(rf"(?<![\w.])({'|'.join(map(re.escape, bound))})((?:\.\w+)+)")
        external |= {(*bound[match[1]], *match[2][1:].split(".")) for match in uses.finditer(text)}
    return [module for _, module in sorted(own)], external


def _names(text: str) -> list[tuple[str, str]]:
    """`a as b, c` (or the parenthesized form) as [("a", "b"), ("c", "")]."""
    names = []
    for part in text.strip("() \t\n").split(","):
        words = part.split()
        if words and all(word.replace(".", "").replace("_", "").isalnum() for word in words):
            names.append((words[0], words[2] if len(words) == 3 and words[1] == "as" else ""))
    return names


def _is_local(name: str, root: pathlib.Path) -> bool:
    return (root / name).is_dir() or (root / f"{name}.py").is_file()


def _resolve(path: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Import `path[0]` and read the attributes after it while they are modules: a lazy SDK
    module loads on first read, exactly as when the program reads it. Returns the module path
    that failed to load, if one did: the program imports it itself, its own way (pulumi-aws's
    ec2 warns as it loads, which the program silences and the tests turn into errors)."""
    try:
        value: object = importlib.import_module(path[0])
    except Exception:  # noqa: BLE001 - what cannot be imported now fails when the program runs
        return {path[:1]}
    for index in range(1, len(path)):
        if not isinstance(value, types.ModuleType):
            break
        lazy = type(value) is not types.ModuleType  # a lazy module loads on this first read
        try:
            value = _attribute(value, path[: index + 1])
        except Exception:  # noqa: BLE001 - as above
            if lazy:
                sys.modules.pop(".".join(path[:index]), None)  # not left half-loaded
            return {path[:index]}
    return set()


def _attribute(module: types.ModuleType, path: tuple[str, ...]) -> object:
    """`module.<last of path>`, importing it first if it is a submodule not imported yet."""
    if not hasattr(module, path[-1]) and importlib.util.find_spec(".".join(path)):
        importlib.import_module(".".join(path))
    return getattr(module, path[-1], None)


def _is_from(module: types.ModuleType, root: pathlib.Path) -> bool:
    """Whether `module` (top-level) is root's own copy (the same files, through a link or not)."""
    place = root / module.__name__
    if hasattr(module, "__path__"):
        return any(pathlib.Path(path).resolve() == place.resolve() for path in module.__path__)
    return pathlib.Path(module.__file__ or "").resolve() == place.with_suffix(".py").resolve()
