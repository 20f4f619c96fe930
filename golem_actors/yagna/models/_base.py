"""The base of the typed yagna models: camelCase JSON in, frozen dataclasses out.

Fields are declared in snake_case; the wire name is their camelCase form unless a field says
otherwise with ``wire(...)``. Fields yagna adds that we do not model are kept in ``extra`` and
written back by ``to_json``, so a newer yagna never breaks parsing and nothing is lost.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import types
import typing
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Self, TypeVar, Union, get_args, get_origin

from golem_actors.errors import GolemActorsError

__all__ = ["Model", "ModelError", "format_timestamp", "parse_timestamp", "wire"]

T = TypeVar("T")


class ModelError(GolemActorsError, ValueError):
    """A body from yagna does not have the shape its model expects; the message names the field."""


def wire(name: str, **kwargs: Any) -> Any:
    """A dataclass field whose JSON name is not the camelCase of its Python name."""
    return dataclasses.field(metadata={"wire": name}, **kwargs)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_FRACTION = re.compile(r"(\.\d+)")


def parse_timestamp(value: str) -> dt.datetime:
    """Parse yagna's RFC 3339 timestamps (``Z`` or offset, 0-9 fraction digits) as UTC-aware."""
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # fromisoformat accepts at most 6 fraction digits; yagna and Rust may send 9.
    text = _FRACTION.sub(lambda m: m.group(1)[:7], text, count=1)
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:  # NaiveDateTime from a Rust service: it is UTC
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def format_timestamp(value: dt.datetime) -> str:
    """Format a timestamp the way yagna accepts it back: UTC with ``Z`` (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclasses.dataclass(frozen=True)
class Model:
    """Base of every yagna model."""

    extra: Mapping[str, Any] = dataclasses.field(
        default_factory=dict, kw_only=True, repr=False, compare=False
    )

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """Build the model from a decoded JSON object; raises ``ModelError`` naming the field."""
        name = cls.__name__
        if not isinstance(data, Mapping):
            raise ModelError(f"{name}: expected a JSON object, got {type(data).__name__}")
        kwargs: dict[str, Any] = {}
        known: set[str] = set()
        for field, key, hint in _fields(cls):
            known.add(key)
            if key in data:
                kwargs[field.name] = _convert(hint, data[key], f"{name}.{key}")
            elif (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                raise ModelError(f"{name}: missing field {key!r}")
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**kwargs, extra=extra)

    def to_json(self) -> dict[str, Any]:
        """The JSON object yagna takes: wire names, ``None`` fields left out, extras kept."""
        out: dict[str, Any] = dict(self.extra)
        for field, key, _ in _fields(type(self)):
            value = getattr(self, field.name)
            if value is not None:
                out[key] = _dump(value)
        return out


_FieldSpec = tuple[dataclasses.Field[Any], str, Any]
_FIELDS: dict[type[Model], tuple[_FieldSpec, ...]] = {}


def _fields(cls: type[Model]) -> tuple[_FieldSpec, ...]:
    """(field, wire name, resolved type) per field, computed once per class."""
    specs = _FIELDS.get(cls)
    if specs is None:
        hints = typing.get_type_hints(cls)
        specs = tuple(
            (f, f.metadata.get("wire", _camel(f.name)), hints[f.name])
            for f in dataclasses.fields(cls)
            if f.name != "extra"
        )
        _FIELDS[cls] = specs
    return specs


def _dump(value: Any) -> Any:
    if isinstance(value, Model):
        return value.to_json()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, tuple | list):
        return [_dump(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _dump(v) for k, v in value.items()}
    return value


def _json_fits(hint: Any, value: Any) -> bool:
    """Whether a decoded JSON value has the JSON type that ``hint`` is parsed from."""
    target = get_origin(hint) or hint
    if target in (list, tuple):
        return isinstance(value, list)
    if target in (dict, Mapping) or (isinstance(target, type) and issubclass(target, Model)):
        return isinstance(value, Mapping)
    if target in (str, dt.datetime):
        return isinstance(value, str)
    if target in (int, float, Decimal):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return target is Any or isinstance(value, target)


def _convert(hint: Any, value: Any, where: str) -> Any:  # noqa: C901, PLR0911, PLR0912
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        args = get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _convert(inner[0], value, where)
        for option in inner:  # a union of shapes: the one whose JSON type fits
            if _json_fits(option, value):
                return _convert(option, value, where)
        raise ModelError(f"{where}: {value!r} fits none of {hint}")
    if hint is Any:
        return value
    if value is None:
        raise ModelError(f"{where}: must not be null")
    if isinstance(hint, type) and issubclass(hint, Model):
        return hint.from_json(value)
    if hint is Decimal:
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise ModelError(f"{where}: not a decimal amount: {value!r}") from None
    if hint is dt.datetime:
        if not isinstance(value, str):
            raise ModelError(f"{where}: expected an RFC 3339 timestamp, got {value!r}")
        try:
            return parse_timestamp(value)
        except ValueError:
            raise ModelError(f"{where}: not an RFC 3339 timestamp: {value!r}") from None
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, list):
            raise ModelError(f"{where}: expected a list, got {type(value).__name__}")
        args = get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ModelError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_convert(a, v, where) for a, v in zip(args, value, strict=True))
        item = args[0] if args else Any
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ModelError(f"{where}: expected an object, got {type(value).__name__}")
        return dict(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ModelError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int and isinstance(value, bool):
        raise ModelError(f"{where}: expected int, got {value!r}")
    if hint in (str, int, bool) and not isinstance(value, hint):
        raise ModelError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value
