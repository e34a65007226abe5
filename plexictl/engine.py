"""Run the real `__main__.py` offline under Pulumi's mock engine and record the desired state.

This is how `plexictl render` and `plexictl diff` see a stack without a cloud account or the
Pulumi CLI, and how the tests see it. The program runs exactly as under `pulumi up`: the stack's
config reaches it the way the CLI passes it (a `{"plexichat:key": "text"}` map, project defaults
from Pulumi.yaml merged in, secrets marked secret), and every registration is recorded with its
inputs and resource options.

The mock answers what a provider would compute (ids, ARNs, endpoints, auto-generated names), so
the program sees realistic values in `up` mode; in `preview` mode they stay unknown, as they do
in a real preview.
"""

from __future__ import annotations

import json
import logging
import pathlib
import runpy
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: 10x faster
UNKNOWN = "[unknown until apply]"
"""How a value the provider computes looks in a preview render (and in `pulumi preview`)."""
FAKE_SECRET = "offline-placeholder-secret-0123456789"
"""Stands in for every `secure:` value: long enough for any token validator, clearly fake."""


@dataclass
class Resource:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    custom: bool
    parent: str
    provider: str
    protect: bool
    retain_on_delete: bool
    dependencies: list[str]
    ignore_changes: list[str]
    aliases: list[str]
    delete_before_replace: bool

    @property
    def is_kubernetes(self) -> bool:
        return self.custom and self.type.startswith("kubernetes:")

    @property
    def component(self) -> str:
        """The nearest component parent, as `<Type> <name>` (e.g. `Traffic web`): the part of
        the program this resource belongs to."""
        if not self.parent:
            return ""
        qualified_type, name = self.parent.split("::")[-2:]
        return f"{qualified_type.rsplit('$', 1)[-1].rsplit(':', 1)[-1]} {name}"

    def manifest(self) -> dict[str, Any]:
        """The Kubernetes object as `kubectl apply` would see it (secrets masked)."""
        group_version, kind = self.type.split(":", 1)[1].rsplit(":", 1)
        group, _, version = group_version.rpartition("/")
        group = "" if group in ("core", "") else group
        body = {k: v for k, v in mask_secrets(self.inputs).items() if k not in ("apiVersion", "kind")}
        return {"apiVersion": f"{group}/{version}" if group else version, "kind": kind, **body}


@dataclass
class Rendering:
    stack: str
    preview: bool
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> Resource:
        matches = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(matches) != 1:
            raise KeyError(f"expected one {type_} named {name}, found {len(matches)}")
        return matches[0]

    def kubernetes_objects(self) -> list[Resource]:
        return [r for r in self.resources if r.is_kubernetes and not r.type.startswith("kubernetes:index")]

    def by_urn(self) -> dict[str, Resource]:
        return {r.urn: r for r in self.resources}


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG_VALUE


def mask_secrets(value: Any) -> Any:
    """Replace every secret with a marker: rendered files must never carry a secret's value."""
    if is_secret(value):
        return "[secret]"
    if isinstance(value, dict):
        return {k: mask_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


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
                None, None, f"duplicate key {key!r} (first given at line {first_line[key]}); "
                "a key may appear only once", key_node.start_mark)
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
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def stack_file_path(stack: str, root: pathlib.Path = ROOT) -> pathlib.Path:
    """`root/Pulumi.<stack>.yaml`, or StackFileError listing the stacks that exist."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise StackFileError(f"no stack {stack!r}: there is no {path.name} in {root}; "
                             f"stacks here: {', '.join(stack_names(root)) or '(none)'}")
    return path


def read_stack_file(path: pathlib.Path, text: str | None = None) -> dict[str, Any]:
    """A stack file as data (its `text` if given), checked to hold a `config:` mapping."""
    data = load_yaml(path.read_text() if text is None else text, path.name) or {}
    if not isinstance(data, dict) or not isinstance(data.get("config", {}), dict):
        raise StackFileError(f"{path.name}: must be a mapping with a `config:` mapping of "
                             "`plexichat:<key>: <value>` entries")
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


class _Mocks:
    """Echo inputs back as outputs, plus what the provider would compute."""

    def __init__(self) -> None:
        import pulumi

        self._pulumi = pulumi
        self._regions: dict[str, str] = {}  # AWS provider id -> its region

    def new_resource(self, args):
        state = dict(args.inputs)
        if self._pulumi.runtime.is_dry_run() and args.typ.startswith(("aws:", "kubernetes:")):
            # A preview knows only what the program set: whatever the provider computes (ARNs,
            # endpoints, generated names) stays unknown until `up`, as in a real preview.
            return "", state
        if args.typ == "pulumi:providers:aws":
            self._regions[f"{args.name}-id"] = state.get("region", MOCK_REGION)
        if args.typ.startswith("kubernetes:") and isinstance(state.get("metadata"), dict):
            metadata = dict(state["metadata"])
            metadata.setdefault("name", f"{args.name}-mock")  # auto-named objects get a suffix
            state["metadata"] = metadata
        if args.typ.startswith("aws:"):
            region = self._regions.get((args.provider or "").rsplit("::", 1)[-1], MOCK_REGION)
            state.update(computed_aws_outputs(args.typ, args.name, state, region))
        return f"{args.name}-id", state

    def call(self, args):
        return computed_invoke_result(args.token, args.args)


MOCK_ACCOUNT = "123456789012"
MOCK_REGION = "us-east-1"


def _rds_instance(name: str, inputs: dict[str, Any], prefix: str, region: str) -> dict[str, Any]:
    ident = inputs.get("identifier") or name
    address = f"{ident}.c0ffee123456.{region}.rds.amazonaws.com"
    outputs = {"arn": f"{prefix}:db:{ident}", "identifier": ident, "address": address,
               "endpoint": f"{address}:5432", "port": 5432}
    if inputs.get("manageMasterUserPassword"):
        outputs["masterUserSecrets"] = [{
            "secretArn": f"arn:aws:secretsmanager:{region}:{MOCK_ACCOUNT}:secret:rds!db-{ident}-AbCdEf",
            "kmsKeyId": inputs.get("masterUserSecretKmsKeyId"), "secretStatus": "active",
        }]
    return outputs


def _cache_group(name: str, inputs: dict[str, Any], prefix: str, region: str) -> dict[str, Any]:
    group = inputs.get("replicationGroupId") or name
    return {"arn": f"{prefix}:replicationgroup:{group}",
            "primaryEndpointAddress": f"master.{group}.c0ffee.use1.cache.amazonaws.com",
            "readerEndpointAddress": f"replica.{group}.c0ffee.use1.cache.amazonaws.com"}


def _bucket(name: str, inputs: dict[str, Any], prefix: str, region: str) -> dict[str, Any]:
    bucket = inputs.get("bucket") or f"{name}-c0ffee"
    return {"arn": f"arn:aws:s3:::{bucket}", "bucket": bucket, "id": bucket}


def _kms_key(name: str, inputs: dict[str, Any], prefix: str, region: str) -> dict[str, Any]:
    # Deterministic across runs (Python's hash() is not), shaped like a real key id.
    key_id = f"{zlib.crc32(name.encode()):08x}-0000-4000-8000-{zlib.crc32(b'key:' + name.encode()):012x}"
    return {"arn": f"{prefix}:key/{key_id}", "keyId": key_id, "id": key_id}


_COMPUTED_BY_TYPE: dict[str, Callable[[str, dict[str, Any], str, str], dict[str, Any]]] = {
    "aws:rds/instance:Instance": _rds_instance,
    "aws:elasticache/replicationGroup:ReplicationGroup": _cache_group,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:kms/key:Key": _kms_key,
    "aws:iam/role:Role": lambda name, inputs, prefix, region: {
        "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:role/{inputs.get('name') or name}"},
    "aws:backup/vault:Vault": lambda name, inputs, prefix, region: {
        "arn": f"{prefix}:backup-vault:{inputs.get('name') or name}"},
    "aws:secretsmanager/secret:Secret": lambda name, inputs, prefix, region: {
        "arn": f"{prefix}:secret:{inputs.get('name') or name}-AbCdEf"},
}


def computed_aws_outputs(
    type_: str, name: str, inputs: dict[str, Any], region: str = MOCK_REGION
) -> dict[str, Any]:
    """What AWS reports after create, for the attributes the program reads: `arn`, `id` and
    `name` for everything, plus the per-type names and endpoints of the table above."""
    service = type_.split(":")[1].split("/")[0]
    prefix = f"arn:aws:{service}:{region}:{MOCK_ACCOUNT}"
    outputs: dict[str, Any] = {"arn": f"{prefix}:{name}", "id": f"{name}-id",
                               "name": inputs.get("name") or name}
    compute = _COMPUTED_BY_TYPE.get(type_)
    if compute:
        outputs.update(compute(name, inputs, prefix, region))
    return outputs


def computed_invoke_result(token: str, args: dict[str, Any]) -> dict[str, Any]:
    """What the AWS data sources the program reads would answer."""
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {"accountId": MOCK_ACCOUNT, "id": MOCK_ACCOUNT, "userId": "AIDAOFFLINE",
                "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:user/offline"}
    if token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "id": "aws", "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws"}
    return {}


def run_program(
    stack: str,
    *,
    preview: bool = False,
    root: pathlib.Path = ROOT,
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
) -> Rendering:
    """Run `root/__main__.py` for `stack` exactly as the CLI would; return all it registered.

    `config` replaces the stack file (tests pass edited copies). A config error surfaces as the
    program's own `pulumi.RunError`.
    """
    if config is None:
        config, secret_keys = stack_config(stack, root)

    def program() -> None:
        sys.path.insert(0, str(root))
        try:
            runpy.run_path(str(root / "__main__.py"), run_name="__main__")
        finally:
            sys.path.remove(str(root))

    return run(program, stack, project=project_file(root)["name"], preview=preview,
               config=config, secret_keys=secret_keys)


def run(
    program: Callable[[], None],
    stack: str,
    *,
    project: str = "plexichat",
    preview: bool = False,
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
) -> Rendering:
    """Run `program` (any function that declares resources) under the mock engine."""
    import pulumi
    from pulumi.runtime.mocks import MockMonitor

    rendering = Rendering(stack=stack, preview=preview)
    mocks = _Mocks()

    class RecordingMonitor(MockMonitor):
        stack_urn = ""

        def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
            response = super().RegisterResource(request)
            if request.type == "pulumi:pulumi:Stack":
                self.stack_urn = response.urn
            else:
                aliases = [self.alias_urn(alias, request) for alias in request.aliases]
                rendering.resources.append(_record(request, response.urn, aliases))
            return response

        def alias_urn(self, alias, request) -> str:
            """The URN an alias names, by this monitor's URN rule. The SDK sends most aliases as
            a spec relative to the resource (`Alias(parent=...)`, `Alias(name=...)`);
            `plexictl diff` compares URNs to follow a rename."""
            if alias.urn:
                return alias.urn
            spec = alias.spec
            parent = self.stack_urn if spec.noParent else (spec.parentUrn or request.parent)
            return self.make_urn(parent, spec.type or request.type, spec.name or request.name)

    class WarningLog(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                rendering.warnings.append(record.getMessage())

    logger = logging.getLogger(f"plexictl.engine.{stack}")
    logger.propagate = False
    logger.handlers[:] = [WarningLog()]

    pulumi.runtime.reset_options(project=project, stack=stack, preview=preview)
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=preview, logger=logger,
        monitor=RecordingMonitor(mocks),
    )
    pulumi.runtime.set_all_config(config or {}, secret_keys or [])

    @pulumi.runtime.test
    def execute():
        program()
        exported = pulumi.runtime.get_root_resource().outputs
        # One by one, so a preview shows every output it knows; the rest stay marked unknown.
        for key in exported:
            rendering.outputs[key] = UNKNOWN
        return pulumi.Output.all(*(
            pulumi.Output.from_input(value).apply(lambda v, k=key: rendering.outputs.__setitem__(k, v))
            for key, value in exported.items()
        ))

    execute()
    # Resources register as their inputs resolve, in an order that differs from one process to
    # the next; by URN, renders are byte-identical and diffs list risks in one order.
    rendering.resources.sort(key=lambda r: r.urn)
    return rendering


def _record(request, urn: str, aliases: list[str]) -> Resource:
    from pulumi.runtime import rpc

    inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
    return Resource(
        type=request.type,
        name=request.name,
        urn=urn,
        inputs=_plain(inputs),
        custom=bool(request.custom),
        parent=request.parent,
        provider=request.provider,
        protect=bool(request.protect),
        retain_on_delete=bool(request.retainOnDelete),
        dependencies=list(request.dependencies),
        ignore_changes=list(request.ignoreChanges),
        aliases=aliases,
        delete_before_replace=bool(request.deleteBeforeReplace),
    )


def _plain(value: Any) -> Any:
    """Deserialized inputs, with unknowns (preview) shown as a readable marker."""
    if isinstance(value, dict):
        # Keys arrive in the order of the wire format's hash map, not the program's: sorted, they
        # read like `kubectl get -o yaml` and do not depend on the protobuf build.
        return {k: _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if type(value).__name__ == "Unknown":
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire format has only floats; 25.0 was an int in the program
    return value
