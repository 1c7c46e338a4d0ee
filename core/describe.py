"""``connector describe NAME`` and ``connector plugins``: what each component takes and gives.

A source or sink is described by its ``Settings`` model (each ``with:`` key with its type, default
and description), a sink by its payload ``Model`` too (the fields ``map:`` may set), and a source
by its record fields: those its ``Record`` model declares, or else those sampled from a shipped
recipe that reads it, run against the sandbox's emulators (:mod:`core.describe_sample`).
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable, Iterable
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, Union

import click
from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

from core.cli import Session, pass_session, reports_errors
from core.describe_text import columns, plain, summary
from core.errors import UnknownComponentError

if TYPE_CHECKING:
    import pluggy
    from pydantic.fields import FieldInfo

    from core.registry import Registry

KINDS = ("source", "sink", "transform")


# --- the plugins listing ------------------------------------------------------------------------


def plugins_listing(registry: Registry) -> dict[str, list[dict[str, str]]]:
    """Every component by kind: name, plugin and a one-line plain description."""
    return {
        "sources": [
            {"name": n, "plugin": registry.sources.owners[n], "description": plain(c.description)}
            for n, c in sorted(registry.sources.items.items())
        ],
        "sinks": [
            {"name": n, "plugin": registry.sinks.owners[n], "description": plain(c.description)}
            for n, c in sorted(registry.sinks.items.items())
        ],
        "transforms": [
            {
                "name": n,
                "plugin": registry.transforms.owners[n],
                "description": summary(f.__doc__, sentence=True),
            }
            for n, f in sorted(registry.transforms.items.items())
        ],
    }


def plugins_lines(listing: dict[str, list[dict[str, str]]]) -> list[str]:
    lines = []
    width = max((len(r["name"]) for rows in listing.values() for r in rows), default=0)
    for kind, rows in listing.items():
        lines.append(f"{kind}:")
        described = ((r["name"], f"{r['description']} [{r['plugin']}]".lstrip()) for r in rows)
        lines.extend(columns(described, width=width))
        lines.append("")
    lines.append("connector describe NAME shows a component's settings and fields.")
    return lines


# --- one component ----------------------------------------------------------------------------


def describe(
    registry: Registry, name: str, *, sample_with: pluggy.PluginManager | None = None
) -> list[dict[str, Any]]:
    """What ``name`` is: one entry per kind registered under it (a source and a sink may share
    a name: ``file.csv``). With ``sample_with``, a source that declares no fields is sampled
    from the emulators it registers."""
    found = []
    if name in registry.sources:
        source = registry.sources.get(name)
        entry = _component("source", name, registry.sources.owners[name], source)
        entry["fields"], entry["fields_from"] = _source_fields(source, name, registry, sample_with)
        found.append(entry)
    if name in registry.sinks:
        sink = registry.sinks.get(name)
        entry = _component("sink", name, registry.sinks.owners[name], sink)
        entry["fields"] = _model_fields(sink.Model) if sink.Model is not None else []
        entry["fields_from"] = "the sink's payload model"
        found.append(entry)
    if name in registry.transforms:
        function = registry.transforms.get(name)
        found.append(_transform(name, registry.transforms.owners[name], function))
    if not found:
        known = [*registry.sources.names(), *registry.sinks.names(), *registry.transforms.names()]
        raise UnknownComponentError("component", name, set(known), hint=registry.failure_hint())
    return found


def _component(kind: str, name: str, owner: str, component: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": name,
        "plugin": owner,
        "description": plain(component.description or "") or summary(component.__doc__),
        "settings": _model_fields(component.Settings),
    }


def _transform(name: str, owner: str, function: Callable[..., Any]) -> dict[str, Any]:
    try:
        parameters = inspect.signature(function).parameters.values()
        signature = "(" + ", ".join(_parameter(p) for p in parameters) + ")"
    except (TypeError, ValueError):
        signature = "(value, ...)"
    doc = inspect.getdoc(function) or ""
    return {
        "kind": "transform",
        "name": name,
        "plugin": owner,
        "description": summary(doc),
        "signature": f"{name}{signature}",
        "details": [plain(p) for p in doc.split("\n\n")[1:] if p.strip()],
    }


def _parameter(parameter: inspect.Parameter) -> str:
    if parameter.kind is parameter.VAR_POSITIONAL:
        return f"*{parameter.name}"
    if parameter.kind is parameter.VAR_KEYWORD:
        return f"**{parameter.name}"
    if parameter.default is parameter.empty:
        return parameter.name
    return f"{parameter.name}={parameter.default!r}"


def _source_fields(
    source: Any, name: str, registry: Registry, pm: pluggy.PluginManager | None
) -> tuple[list[dict[str, Any]], str]:
    if source.RecordModel is not None:
        return _model_fields(source.RecordModel), "declared by the source"
    if pm is None:
        return [], "not sampled (--no-sample)"
    from core.webhooks import WebhookSource

    if issubclass(source, WebhookSource):
        return [], "events arrive through connector serve, so none were sampled"
    from core.describe_sample import sample_fields

    return sample_fields(name, registry, pm)


def _model_fields(model: type[BaseModel]) -> list[dict[str, Any]]:
    return [_field(name, info) for name, info in model.model_fields.items()]


def _field(name: str, info: FieldInfo) -> dict[str, Any]:
    required = info.is_required()
    default: Any = None
    if not required:
        if info.default is not PydanticUndefined:
            default = info.default
        elif info.default_factory is not None and not info.default_factory_takes_validated_data:
            default = info.default_factory()  # type: ignore[call-arg]
    return {
        "name": info.alias or name,
        "type": _accepted(info) or type_text(info.annotation),
        "required": required,
        "default": _jsonable(default),
        "description": plain(info.description or ""),
    }


def _accepted(info: FieldInfo) -> str | None:
    """What a setting accepts where its validator takes more than its type (a date for a Unix
    time), as its ``json_schema_extra`` tells editors."""
    extra = info.json_schema_extra
    choices = extra.get("anyOf") if isinstance(extra, dict) else None
    if not isinstance(choices, list):
        return None
    names = {"string": "text", "boolean": "true/false", "number": "number"}
    shown = [
        str(c.get("format") or names.get(str(c.get("type")), c.get("type")))
        for c in choices
        if isinstance(c, dict)
    ]
    return " or ".join(shown) or None


def _jsonable(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


def type_text(annotation: Any) -> str:
    """A type as a recipe's author reads it: ``text``, ``integer or null``, ``one of a, b``."""
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_text(arguments[0])
    if origin in (Union, types.UnionType):
        named = [type_text(a) for a in arguments if a is not type(None)]
        return " or ".join(named + (["null"] if type(None) in arguments else []))
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in arguments)
    if origin in (list, tuple, set, frozenset, Iterable):
        return f"list of {type_text(arguments[0])}" if arguments else "list"
    if origin is dict:
        return f"mapping of {type_text(arguments[1])}" if len(arguments) == 2 else "mapping"
    names = {str: "text", int: "integer", float: "number", bool: "true/false"}
    if annotation in names:
        return names[annotation]
    if annotation is SecretStr:
        return "secret"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(str(m.value) for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def describe_lines(entry: dict[str, Any]) -> list[str]:
    """One component as plain text within 80 columns."""
    lines = [f"{entry['kind']} {entry['name']} [{entry['plugin']}]"]
    if entry["description"]:
        lines.extend(columns([("", entry["description"])], indent=0, gap=2))
    if entry["kind"] == "transform":
        lines += ["", f"  {entry['signature']}"]
        for paragraph in entry["details"]:
            lines += [""] + columns([("", paragraph)], indent=0, gap=2)
        return lines
    lines += ["", "settings (with:):"]
    lines.extend(columns(_setting_rows(entry["settings"])) or ["  (none)"])
    if entry["kind"] == "sink":
        lines += ["", "payload fields (what map: sets):"]
        lines.extend(
            columns(_field_rows(entry["fields"])) or ["  (any: the sink takes what map: gives)"]
        )
        return lines
    lines += ["", "record fields:"]
    lines.extend(columns([("", f"({entry['fields_from']})")], indent=0))
    lines.extend(columns(_field_rows(entry["fields"])))
    return lines


def _setting_rows(settings: list[dict[str, Any]]) -> Iterable[tuple[str, str]]:
    for s in settings:
        when = "required" if s["required"] else f"default {json.dumps(s['default'])}"
        yield s["name"], f"{s['type']}, {when}. {s['description']}".strip()


def _field_rows(fields: list[dict[str, Any]]) -> Iterable[tuple[str, str]]:
    for f in fields:
        parts = [f["type"]]
        if f.get("required"):
            parts.append("required")
        if f.get("example") is not None:
            parts.append(f"e.g. {json.dumps(f['example'], ensure_ascii=False)}")
        text = ", ".join(parts)
        yield f["name"], f"{text}. {f['description']}" if f.get("description") else text


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option(
    "--no-sample", is_flag=True, help="do not sample a source's fields from the sandbox emulators"
)
@pass_session
@reports_errors
def describe_command(session: Session, name: str, as_json: bool, no_sample: bool) -> None:
    """A source's, sink's or transform's settings and fields (a source's from a sample)."""
    show(session, name, as_json=as_json, sample=not no_sample)


def show(session: Session, name: str, *, as_json: bool, sample: bool = True) -> None:
    """Print what ``name`` is (``connector describe``, ``connector plugins NAME``)."""
    found = describe(session.registry, name, sample_with=session.pm if sample else None)
    if as_json:
        click.echo(json.dumps(found if len(found) > 1 else found[0], indent=2, default=str))
        return
    click.echo("\n\n".join("\n".join(describe_lines(entry)) for entry in found))
