"""Golem's LDAP-style constraint language: parse, render and evaluate, with no I/O.

localnet's provider agents use it to check a demand's constraints against their offer's
properties and the other way round. The semantics follow yagna's matcher (``ya-market-resolver``)
so that a localnet provider agrees with the real market:

- Three-valued logic. A comparison on a missing property is UNDEFINED, and so is a comparison on a
  ``name[aspect]`` or with an implied type (``$d`` decimal, ``$v`` semver, ``$t`` RFC 3339 time)
  the property cannot be converted to (yagna converts string values only). ``&``, ``|``, ``!``
  combine as Kleene logic (yagna's ``resolve_and``/``resolve_or`` return False/True eagerly, else
  Undefined if any operand was). Presence ``(a=*)`` is never UNDEFINED: yagna's
  ``resolve_present`` says False when ``a`` is missing.
- Only TRUE is a match: yagna's matcher and proposal validation treat ``Match::Undefined`` as no.
- A comparison whose value does not parse as the property's type is FALSE (yagna "ignore parsing
  error, assume false"). Numbers compare as floats, strings by code point, booleans only with
  ``=`` against exactly ``true``/``false``; ``<``/``>`` on booleans and lists are FALSE.
- ``=`` on a string is a ``*`` glob; on a list it is membership, or set-like equality when the
  value is itself ``[x,y]`` (yagna ``equals_list``). Versions are compared only via ``$v``,
  ignoring build metadata (semver 0.11).
- Properties are flattened like yagna (dots join nested keys, ``@tag`` sets the prefix itself);
  ``None``, ``{}`` and lists holding them are absent, as yagna cannot parse them as values.
- ``&``/``|`` take zero or more operands (``(&)`` is true, ``(|)`` false), ``!`` exactly one.
  There is no ``!=`` or ``~=``. Names may hold any character but ``()=<>~[]$`` and whitespace, so
  ``golem.com.payment.debit-notes.accept-timeout?`` is referenced verbatim, ``?`` included.

Deliberate differences, all stricter or kinder to authors: ``""`` means "always true" (yagna
rejects it), text after the closing ``)`` and ``(`` inside names or values are errors (yagna
ignores the rest, or reads such text as part of a name or value), whitespace around names and
values is dropped (yagna keeps it, so ``(a=1 )`` never matches there), and globs match literally
(yagna builds a regex without escaping ``.`` or ``+``).
"""

from __future__ import annotations

import abc
import enum
import functools
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, NoReturn

from golem_actors.errors import GolemActorsError

__all__ = [
    "And",
    "Compare",
    "Constraint",
    "ConstraintSyntaxError",
    "Empty",
    "Not",
    "Or",
    "Present",
    "PropertyRef",
    "Truth",
    "flatten_properties",
    "match_demand_offer",
    "matches",
    "parse",
]


class ConstraintSyntaxError(GolemActorsError, ValueError):
    """Malformed constraint text; ``position`` is the 0-based index where the problem was seen."""

    def __init__(self, text: str, position: int, problem: str) -> None:
        near = repr(text[position : position + 20]) if position < len(text) else "end of input"
        super().__init__(f"at position {position} (near {near}): {problem}")
        self.text = text
        self.position = position
        self.problem = problem


class Truth(enum.Enum):
    TRUE = "true"
    FALSE = "false"
    UNDEFINED = "undefined"


def _truth(value: bool) -> Truth:
    return Truth.TRUE if value else Truth.FALSE


@dataclass(frozen=True)
class PropertyRef:
    """``name``, optionally ``name[aspect]`` and/or an implied type ``$d``/``$v``/``$t``."""

    name: str
    aspect: str | None = None
    implied: str | None = None

    def __str__(self) -> str:
        aspect = f"[{self.aspect}]" if self.aspect is not None else ""
        implied = f"${self.implied}" if self.implied is not None else ""
        return f"{self.name}{aspect}{implied}"


class Constraint(abc.ABC):
    """An immutable constraint AST node; ``str()`` gives canonical constraint text."""

    __slots__ = ()

    @abc.abstractmethod
    def resolve_flat(self, flat: Mapping[str, Any]) -> Truth:
        """Resolve against properties that are already flat (see ``flatten_properties``)."""

    def resolve(self, properties: Mapping[str, Any]) -> Truth:
        return self.resolve_flat(flatten_properties(properties))

    def evaluate(self, properties: Mapping[str, Any]) -> bool:
        """True only when the constraint resolves to TRUE, as in yagna's matcher."""
        return self.resolve(properties) is Truth.TRUE


@dataclass(frozen=True)
class Empty(Constraint):
    def resolve_flat(self, flat: Mapping[str, Any]) -> Truth:  # noqa: ARG002
        return Truth.TRUE

    def __str__(self) -> str:
        return "()"


@dataclass(frozen=True)
class And(Constraint):
    operands: tuple[Constraint, ...]

    def resolve_flat(self, flat: Mapping[str, Any]) -> Truth:
        return _kleene((op.resolve_flat(flat) for op in self.operands), Truth.FALSE)

    def __str__(self) -> str:
        return "(&" + "".join(map(str, self.operands)) + ")"


@dataclass(frozen=True)
class Or(Constraint):
    operands: tuple[Constraint, ...]

    def resolve_flat(self, flat: Mapping[str, Any]) -> Truth:
        return _kleene((op.resolve_flat(flat) for op in self.operands), Truth.TRUE)

    def __str__(self) -> str:
        return "(|" + "".join(map(str, self.operands)) + ")"


@dataclass(frozen=True)
class Not(Constraint):
    operand: Constraint

    def resolve_flat(self, flat: Mapping[str, Any]) -> Truth:
        inner = self.operand.resolve_flat(flat)
        return inner if inner is Truth.UNDEFINED else _truth(inner is Truth.FALSE)

    def __str__(self) -> str:
        return f"(!{self.operand})"


@dataclass(frozen=True)
class Present(Constraint):
    ref: PropertyRef

    def resolve_flat(self, flat: Mapping[str, Any]) -> Truth:
        # Offers carry no aspects, so an aspect is never present.
        found = self.ref.aspect is None and _value(flat, self.ref.name) is not _ABSENT
        return _truth(found)

    def __str__(self) -> str:
        return f"({self.ref}=*)"


@dataclass(frozen=True)
class Compare(Constraint):
    ref: PropertyRef
    op: str  # one of = < <= > >=
    value: str

    def resolve_flat(self, flat: Mapping[str, Any]) -> Truth:
        prop = _value(flat, self.ref.name)
        if prop is _ABSENT or self.ref.aspect is not None:
            return Truth.UNDEFINED
        if self.ref.implied is None:
            return _truth(_holds(self.op, prop, self.value))
        convert = _IMPLIED[self.ref.implied]
        typed = convert(prop) if isinstance(prop, str) else None
        if typed is None:
            return Truth.UNDEFINED
        other = convert(self.value)
        return _truth(other is not None and _OPS[self.op](typed, other))

    def __str__(self) -> str:
        return f"({self.ref}{self.op}{self.value})"


def _kleene(results: Iterable[Truth], dominant: Truth) -> Truth:
    """``dominant`` (FALSE for ``&``, TRUE for ``|``) wins at once; else UNDEFINED wins."""
    undefined = False
    for result in results:
        if result is dominant:
            return dominant
        undefined = undefined or result is Truth.UNDEFINED
    return Truth.UNDEFINED if undefined else _truth(dominant is Truth.FALSE)


# --- values -------------------------------------------------------------------------------------


_ABSENT: Final = object()  # a property yagna would not see
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_FLOAT = re.compile(r"[+-]?(?:inf|infinity|nan|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)", re.IGNORECASE)
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_SEMVER = re.compile(rf"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-({_IDENT}))?(?:\+{_IDENT})?")
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)")


def _float(text: str) -> float | None:
    """Rust's ``f64::from_str`` grammar; Python's ``float`` alone would also take ``1_0``."""
    return float(text) if _FLOAT.fullmatch(text) else None


def _decimal(text: str) -> Decimal | None:
    return Decimal(text) if _DECIMAL.fullmatch(text) else None


def _version(text: str) -> tuple[Any, ...] | None:
    """A semver sort key; a release sorts after its pre-releases, build metadata is ignored."""
    m = _SEMVER.fullmatch(text)
    if m is None:
        return None
    pre = m[4]
    ids = [(0, int(i), "") if i.isdigit() else (1, 0, i) for i in pre.split(".")] if pre else []
    return (int(m[1]), int(m[2]), int(m[3]), (0, ids) if pre else (1, []))


def _datetime(text: str) -> datetime | None:
    if not _RFC3339.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text.upper())
    except ValueError:  # e.g. month 13
        return None


_IMPLIED: dict[str, Callable[[str], Any]] = {"d": _decimal, "v": _version, "t": _datetime}


def _normalize(raw: Any) -> Any:
    """A JSON value as yagna types it: str, bool, float or list of those, or ABSENT."""
    if raw is None or isinstance(raw, Mapping):
        return _ABSENT
    if isinstance(raw, bool | str | float):
        return raw
    if isinstance(raw, int):
        return float(str(int(raw)))  # huge ints become inf, as in Rust, not OverflowError
    if isinstance(raw, list | tuple):
        items = [_normalize(item) for item in raw]
        return _ABSENT if _ABSENT in items else items
    raise TypeError(f"unsupported property value type {type(raw).__name__}")


def _value(flat: Mapping[str, Any], name: str) -> Any:
    return _normalize(flat[name]) if name in flat else _ABSENT


def _glob(pattern: str, text: str) -> bool:
    if "*" not in pattern:
        return pattern == text
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), text) is not None


def _holds(op: str, prop: Any, text: str) -> bool:
    if isinstance(prop, list):
        return op == "=" and _list_equals(prop, text)
    if isinstance(prop, bool):
        return op == "=" and text in {"true", "false"} and prop == (text == "true")
    if isinstance(prop, str):
        return _glob(text, prop) if op == "=" else _OPS[op](prop, text)
    other = _float(text)
    return other is not None and _OPS[op](prop, other)


def _list_equals(items: list[Any], text: str) -> bool:
    inner = text[1:-1]
    if not (text.startswith("[") and text.endswith("]")) or "[" in inner or "]" in inner:
        return any(_holds("=", item, text) for item in items)  # membership
    wanted = [w.strip() for w in inner.split(",")] if inner.strip() else []
    if len(wanted) != len(items):
        return False
    return all(any(_holds("=", item, w) for item in items) for w in wanted)


# --- properties ---------------------------------------------------------------------------------


def flatten_properties(nested: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten nested property dicts into dotted keys; flat keys pass through unchanged."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        _flatten_into(flat, key, value)
    return flat


def _flatten_into(flat: dict[str, Any], prefix: str, value: Any) -> None:
    if not (isinstance(value, Mapping) and value):
        flat[prefix] = value  # empty dicts are kept, like yagna, but never match
        return
    for key, item in value.items():
        if key == "@tag":  # yagna's way to give a value to a key that also has children
            flat[prefix] = item
        else:
            _flatten_into(flat, f"{prefix}.{key}", item)


# --- parsing ------------------------------------------------------------------------------------

_REF = re.compile(r"([^\[\]$]+)(?:\[([^\[\]$]+)\])?(?:\$([dvt]))?")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, problem: str, position: int | None = None) -> NoReturn:
        raise ConstraintSyntaxError(self.text, self.pos if position is None else position, problem)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ws(self) -> str:
        while self.peek().isspace():
            self.pos += 1
        return self.peek()

    def filter(self) -> Constraint:
        if self.skip_ws() != "(":
            self.fail("expected '('")
        opened = self.pos
        self.pos += 1
        head = self.skip_ws()
        unbalanced = f"unbalanced parentheses, '(' opened at position {opened} is not closed"
        if not head:
            self.fail(unbalanced)
        node = self.junction(head) if head in "&|!" else self.comparison()
        if self.skip_ws() != ")":
            self.fail(unbalanced)
        self.pos += 1
        return node

    def junction(self, head: str) -> Constraint:
        self.pos += 1
        operands: list[Constraint] = []
        while self.skip_ws() == "(":
            operands.append(self.filter())
        if self.peek() not in {"", ")"}:
            self.fail(f"expected '(' or ')' in the operands of '{head}'")
        if head == "!":
            if len(operands) != 1:
                self.fail(f"'!' takes exactly one operand, got {len(operands)}")
            return Not(operands[0])
        return And(tuple(operands)) if head == "&" else Or(tuple(operands))

    def comparison(self) -> Constraint:
        if self.peek() == ")":
            return Empty()
        ref = self.reference()
        op = next(o for o in ("<=", ">=", "=", "<", ">") if self.text.startswith(o, self.pos))
        self.pos += len(op)
        value_start = self.pos
        while self.peek() not in {"", ")"}:
            if self.peek() == "(":
                self.fail(f"unexpected '(' in the value compared with '{ref}'")
            self.pos += 1
        value = self.text[value_start : self.pos].strip()
        return Present(ref) if op == "=" and value == "*" else Compare(ref, op, value)

    def reference(self) -> PropertyRef:
        """The property reference, leaving ``pos`` on a valid comparison operator."""
        start = self.pos
        while self.peek() and self.peek() not in "=<>~()" and not self.peek().isspace():
            self.pos += 1
        raw = self.text[start : self.pos]
        here = self.skip_ws()
        if here == "(":
            self.fail(f"unexpected '(' after {raw!r}" if raw else "missing operator &, | or !")
        if not here or here not in "=<>~":
            self.fail(f"missing comparison operator after {raw!r}")
        if here == "~":
            self.fail("'~=' (approximate match) is not supported by Golem")
        if not raw:
            self.fail("empty property name")
        if raw.endswith("!") and here == "=":
            self.fail("'!=' is not an operator; write (!(name=value))", self.pos - 1)
        ref = _REF.fullmatch(raw)
        if ref is None:
            self.fail(f"malformed property reference {raw!r}", start)
        return PropertyRef(ref[1], ref[2], ref[3])


@functools.lru_cache(maxsize=512)
def _parse_cached(text: str) -> Constraint:
    parser = _Parser(text)
    if not parser.skip_ws():
        return Empty()
    node = parser.filter()
    if trailing := parser.skip_ws():
        hint = " (several terms need '&' or '|')" if trailing == "(" else ""
        parser.fail(f"unexpected text after the constraint{hint}")
    return node


def parse(text: str) -> Constraint:
    """Parse constraint text; cached, since agents see the same demand again and again."""
    return _parse_cached(text)


def matches(constraints: str, properties: Mapping[str, Any]) -> bool:
    """Do ``properties`` (flat or nested) satisfy ``constraints``? UNDEFINED counts as no."""
    return parse(constraints).evaluate(properties)


def match_demand_offer(
    demand_properties: Mapping[str, Any],
    demand_constraints: str,
    offer_properties: Mapping[str, Any],
    offer_constraints: str,
) -> bool:
    """yagna's match: each side's constraints hold on the other side's properties."""
    return matches(demand_constraints, offer_properties) and matches(
        offer_constraints, demand_properties
    )
