"""Strict validation of custom resources against the cloudcoil CRD models.

kubernetes-validate knows only built-in kinds. For a CRD kind the cloudcoil model is the schema;
its models ignore unknown keys, so strictness comes from a round trip: the model's dump of what
it parsed must equal the manifest, so a misspelt or misplaced field (dropped by the model) fails.
"""

from __future__ import annotations

import importlib
from typing import Any

MODEL_MODULES = {
    "networking.istio.io/v1": "cloudcoil.models.istio.networking.v1",
    "security.istio.io/v1": "cloudcoil.models.istio.security.v1",
    "telemetry.istio.io/v1": "cloudcoil.models.istio.telemetry.v1",
    "cert-manager.io/v1": "cloudcoil.models.cert_manager.v1",
    "monitoring.coreos.com/v1": "cloudcoil.models.prometheus_operator.v1",
    "monitoring.coreos.com/v1alpha1": "cloudcoil.models.prometheus_operator.v1alpha1",
}


def is_custom_resource(manifest: dict[str, Any]) -> bool:
    return manifest["apiVersion"] in MODEL_MODULES


def validate_strictly(manifest: dict[str, Any]) -> None:
    """Raise (pydantic ValidationError or AssertionError) unless the manifest is exactly valid."""
    module = importlib.import_module(MODEL_MODULES[manifest["apiVersion"]])
    model = getattr(module, manifest["kind"])
    parsed = model.model_validate(manifest)
    dumped = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert dumped == manifest, f"{manifest['kind']}: fields the schema does not know:\n" + "\n".join(
        _differences(manifest, dumped)
    )


def _differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in expected.keys() | actual.keys():
            if key not in actual:
                out.append(f"  {path}.{key}: unknown to the schema")
            elif key not in expected:
                out.append(f"  {path}.{key}: added by the model")
            else:
                out.extend(_differences(expected[key], actual[key], f"{path}.{key}"))
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            d for i, (e, a) in enumerate(zip(expected, actual, strict=True)) for d in _differences(e, a, f"{path}[{i}]")
        ]
    return [] if expected == actual else [f"  {path}: {expected!r} became {actual!r}"]
