"""The JSON Schema of the config file as the loader reads it, for `continuity schema` and editors.

The models describe their own shorthands (a fallback written as a bare channel name, durations like 1h30m).
Two things the loader does before the models see the YAML are added here, so that an editor never flags a
config that `continuity validate` accepts:

- every `${VAR}` / `${file:PATH}` in a value is resolved first, so `attempts: ${RETRIES}` or
  `bind: ${BIND}` is fine wherever a number, a flag or a constrained string is expected;
- defaults are shown as a person writes them (`2s`), not as pydantic's ISO 8601 `PT2S`, which the loader
  refuses and an editor would offer as a completion.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ENV_REF = "EnvRef"
ENV_REF_SCHEMA: dict[str, Any] = {
    "type": "string",
    # An unescaped reference, as continuity.config.envrefs resolves it (`$${` is a literal `${`).
    "pattern": r"(^|[^$])\$\{\s*(file:[^}]+|[A-Za-z_][A-Za-z0-9_]*)\s*\}",
    "description": "replaced before the config is checked: ${ENV_VAR} or ${file:/path/to/secret}",
}
_ENV_REF_LINK = {"$ref": f"#/$defs/{ENV_REF}"}
_NOTES = ("title", "description", "default", "examples")
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def spell_duration(delta: timedelta) -> str:
    """`1h30m`, `2d`, `0s`: exact (unlike the compact table format), and accepted by the loader."""
    rest, parts = int(delta.total_seconds()), []
    for unit, size in _UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


class _ConfigSchemaGenerator(GenerateJsonSchema):
    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, timedelta):
            return spell_duration(dft)
        return super().encode_default(dft)


def _constrained(node: dict[str, Any]) -> bool:
    """A scalar that a `${...}` string would fail: a number or flag, or a string with a required shape."""
    kind = node.get("type")
    return kind in ("integer", "number", "boolean") or (
        kind == "string" and any(k in node for k in ("pattern", "enum", "const"))
    )


def _descend(node: dict[str, Any]) -> None:
    # Only value positions: mapping keys (propertyNames, the keys of patternProperties) are not resolved.
    # pydantic emits no oneOf for these models; an env reference could match several of its branches.
    for key in ("properties", "patternProperties", "$defs"):
        if key in node:
            node[key] = {name: _admit_refs(sub) for name, sub in node[key].items()}
    for key in ("allOf", "prefixItems"):
        if key in node:
            node[key] = [_admit_refs(sub) for sub in node[key]]
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _admit_refs(node[key])
    for sub in node.get("anyOf", []):
        # A union inside a union (a Duration | None) gets its own reference branch.
        if "anyOf" in sub:
            _admit_refs(sub)
        else:
            _descend(sub)
    if "patternProperties" in node:
        # pydantic checks every key of a dict[Name, ...] against the pattern; the schema must too.
        node.setdefault("additionalProperties", False)


def _admit_refs(node: dict[str, Any]) -> dict[str, Any]:
    """node, where every constrained scalar value may also be written as a `${...}` reference."""
    _descend(node)
    if "anyOf" in node:
        if any(_constrained(sub) for sub in node["anyOf"]) and _ENV_REF_LINK not in node["anyOf"]:
            node["anyOf"].append(dict(_ENV_REF_LINK))
        return node
    if _constrained(node):
        notes = {key: node.pop(key) for key in _NOTES if key in node}
        return {**notes, "anyOf": [node, dict(_ENV_REF_LINK)]}
    return node


def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the config file: strict on keys, lenient where the loader is."""
    from continuity.config.models import Config

    doc = _admit_refs(Config.model_json_schema(mode="validation", schema_generator=_ConfigSchemaGenerator))
    defs = doc.setdefault("$defs", {})
    defs[ENV_REF] = dict(ENV_REF_SCHEMA)
    _typed(defs, "SinkSpec", _registered("sinks"))
    _typed(defs, "ProbeSpec", _registered("probes"))
    return {"$schema": SCHEMA_DIALECT, **doc, "title": "continuity configuration"}


def _registered(kind: str) -> dict[str, Any]:
    """type name → Settings model of every registered sink or probe type."""
    if kind == "sinks":
        from continuity.sinks import SINKS, sink_class

        return {name: sink_class(name).Settings for name in SINKS}
    from continuity.probes import PROBES, probe_class

    return {name: probe_class(name).Settings for name in PROBES}


def _typed(defs: dict[str, Any], spec: str, models: dict[str, Any]) -> None:
    """Replace the loose `{type: string, ...}` of a sink or probe spec by one branch per registered type: its
    `type` as a constant and its own settings, strict, so an editor flags `timout:` as the loader does."""
    if spec not in defs:
        return
    branches = []
    for name, model in sorted(models.items()):
        prefix = f"{spec}_{name}_"
        branch = model.model_json_schema(mode="validation", schema_generator=_ConfigSchemaGenerator,
                                         ref_template="#/$defs/" + prefix + "{model}")
        for sub, sub_schema in branch.pop("$defs", {}).items():
            defs[prefix + sub] = _admit_refs(sub_schema)
        branch = _admit_refs(branch)
        props = branch.setdefault("properties", {})
        props["type"] = {"const": name}
        branch["required"] = sorted({"type", *branch.get("required", [])})
        branch["additionalProperties"] = False
        branch["title"] = f"{name} ({spec[:-4].lower()})"
        branches.append(branch)
    notes = {key: defs[spec][key] for key in ("description",) if key in defs[spec]}
    defs[spec] = {**notes, "anyOf": branches}
