"""The constraint matcher: cases follow yagna's resolver tests; hypothesis checks the logic laws."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golem_actors.localnet.constraints import (
    And,
    Compare,
    Constraint,
    ConstraintSyntaxError,
    Empty,
    Not,
    Or,
    Present,
    PropertyRef,
    Truth,
    flatten_properties,
    match_demand_offer,
    matches,
    parse,
)

T, F, U = Truth.TRUE, Truth.FALSE, Truth.UNDEFINED


# What a yagna VM provider offers, and what a yapapi requestor demands (flat, as yagna sends them).
OFFER = {
    "golem.inf.mem.gib": 8.0,
    "golem.inf.storage.gib": 40.5,
    "golem.inf.cpu.threads": 4,
    "golem.runtime.name": "vm",
    "golem.runtime.version": "0.3.0",
    "golem.node.id.name": "provider-1",
    "golem.node.debug.subnet": "public",
    "golem.com.payment.platform.erc20-holesky-tglm.address": "0x2f2a…",
    "golem.com.payment.protocol.version": 3,
    "golem.com.payment.debit-notes.accept-timeout?": 240,
    "golem.com.pricing.model": "linear",
    "golem.com.pricing.model.linear.coeffs": [0.0001, 0.0002, 0.0],
    "golem.com.usage.vector": ["golem.usage.cpu_sec", "golem.usage.duration_sec"],
    "golem.activity.caps.transfer.protocol": ["http", "https", "gftp"],
    "golem.srv.caps.multi-activity": True,
}
OFFER_CONSTRAINTS = "(&\n  (golem.srv.comp.expiration>1705586871777)\n)"  # ya-provider's format
DEMAND = {
    "golem.srv.comp.expiration": 1705587171777,
    "golem.node.debug.subnet": "public",
    "golem.com.payment.chosen-platform": "erc20-holesky-tglm",
}
DEMAND_CONSTRAINTS = (
    "(&(golem.inf.mem.gib>=0.5)\n\t(golem.inf.storage.gib>=2.0)\n\t(golem.runtime.name=vm)"
    "\n\t(golem.com.payment.platform.erc20-holesky-tglm.address=*)"
    "\n\t(golem.com.payment.protocol.version>1))"
)
TAGGED = {"golem": {"com": {"scheme": {"@tag": "payu", "payu": {"interval-sec?": 6.0}}}}}

RESOLVE_CASES: list[tuple[str, dict[str, Any], Truth]] = [
    # empty: always true
    ("", {}, T),
    (" \n\t", {}, T),
    ("()", {}, T),
    ("( )", {}, T),
    ("(&)", {}, T),
    ("(|)", {}, F),
    # string equality, and a missing property is UNDEFINED
    ("(cn=Babs Jensen)", {"cn": "Babs Jensen"}, T),
    ("(cn=Babs Jensen)", {"cn": "Dblah"}, F),
    ("(cn=Babs Jensen)", {"cnas": "Dblah"}, U),
    ("(cn=Babs Jensen)", {"cn": "BabsJensen"}, F),
    ("(cn=)", {"cn": ""}, T),
    # wildcards, literal apart from '*', for strings only
    ("(cn=Babs *)", {"cn": "Babs Jensen"}, T),
    ("(cn=*Jensen)", {"cn": "Babs Jensen"}, T),
    ("(cn=B*s J*n)", {"cn": "Babs Jensen"}, T),
    ("(cn=**)", {"cn": ""}, T),
    ("(cn=Babs *)", {"cn": "Dblah"}, F),
    ("(cn=Babs *)", {}, U),
    ("(golem.node.id.name=prov*)", OFFER, T),
    ("(golem.node.id.name=prov*)", {"golem.node.id.name": "requestor"}, F),
    ("(a=1.*)", {"a": "1.5"}, T),
    ("(a=1.*)", {"a": "1x5"}, F),
    ("(a=1*)", {"a": 12}, F),
    # presence: FALSE, never UNDEFINED, when missing; None and {} are not values
    ("(a=*)", {"a": 1}, T),
    ("(a=*)", {"a": ""}, T),
    ("(a=*)", {"a": False}, T),
    ("(a=*)", {"a": []}, T),
    ("(a=*)", {}, F),
    ("(a=*)", {"a": None}, F),
    ("(a=*)", {"a": {}}, F),
    ("(!(a=*))", {}, T),
    # numbers
    ("(cn=123)", {"cn": 123}, T),
    ("(cn=123.0)", {"cn": 123}, T),
    ("(cn=123)", {"cn": 456}, F),
    ("(cn=1ds23)", {"cn": 123}, F),
    ("(cn>123)", {"cn": 124}, T),
    ("(cn>123)", {"cn": 12}, F),
    ("(cn>1ds23)", {"cn": 123}, F),
    ("(cn<123.56)", {"cn": 122.674}, T),
    ("(cn<123.56)", {"cn": 126}, F),
    ("(cn<=5)", {"cn": 5}, T),
    ("(cn>=5)", {"cn": 5.0}, T),
    ("(cn<5)", {"cn": 5}, F),
    ("(cn>5)", {"cn": 5}, F),
    ("(cn>=1e3)", {"cn": 1000}, T),
    ("(cn>-1)", {"cn": 0}, T),
    ("(cn<inf)", {"cn": 10**400}, F),
    ("(cn=1_000)", {"cn": 1000}, F),
    ("(cn= 5 )", {"cn": 5}, T),
    # strings compare as strings even when they look like numbers or versions
    ("(a>=0.5)", {"a": "1"}, T),
    ("(a>=10)", {"a": "9"}, T),
    ("(a>=10)", {"a": 9}, F),
    ("(a=1)", {"a": "1"}, T),
    ("(a=1.0)", {"a": "1"}, F),
    ("(a=x)", {"a": 1}, F),
    ("(cn>=1.5.0)", {"cn": "1.10.0"}, F),
    ("(a<b)", {"a": "a"}, T),
    # booleans: only '=' with exactly true/false
    ("(a=true)", {"a": True}, T),
    ("(a=false)", {"a": False}, T),
    ("(a=true)", {"a": False}, F),
    ("(a=True)", {"a": True}, F),
    ("(a=1)", {"a": True}, F),
    ("(a>false)", {"a": True}, F),
    ("(a=yes)", {"a": False}, F),
    ("(golem.srv.caps.multi-activity=true)", OFFER, T),
    # lists: '=' is membership, or set-like equality against [x,y]; ordering is FALSE
    ("(cn=Babs Jensen)", {"cn": ["Babs Jensen", "Dblah"]}, T),
    ("(cn=Babs Jensen)", {"cn": ["Dblah", "Argh"]}, F),
    ("(cn=Babs *)", {"cn": ["x", "Babs J"]}, T),
    ("(a=2)", {"a": [1, 2, 3]}, T),
    ("(a=true)", {"a": [False, True]}, T),
    ("(a=[abc,def])", {"a": ["abc", "def"]}, T),
    ("(a=[def, abc])", {"a": ["abc", "def"]}, T),
    ("(a=[abc,def,xyz])", {"a": ["abc", "def"]}, F),
    ("(a=[abc,xyz])", {"a": ["abc", "def"]}, F),
    ("(a=[])", {"a": []}, T),
    ("(a=x)", {"a": []}, F),
    ("(a=[x)", {"a": ["[x"]}, T),
    ("(a=[abc])", {"a": ["abc", "def"]}, F),
    ("(a>=abc)", {"a": ["abc"]}, F),
    ("(a=x)", {"a": ["x", None]}, U),
    ("(golem.activity.caps.transfer.protocol=https)", OFFER, T),
    ("(golem.com.usage.vector=golem.usage.gib)", OFFER, F),
    # implied types: $v semver, $d decimal, $t RFC 3339; unconvertible property is UNDEFINED
    ("(cn$v>=1.5.0)", {"cn": "1.10.0"}, T),
    ("(cn$v>=1.5.0)", {"cn": "dblah"}, U),
    ("(cn$v>=1.5.0)", {"cn": 2}, U),
    ("(cn$v>=1.0)", {"cn": "1.0.0"}, F),
    ("(cn$v>1.0.0-rc.1)", {"cn": "1.0.0"}, T),
    ("(cn$v<1.0.0-rc.10)", {"cn": "1.0.0-rc.2"}, T),
    ("(cn$v<1.0.0-rc.1)", {"cn": "1.0.0-alpha"}, T),
    ("(cn$v<1.0.0-alpha)", {"cn": "1.0.0-1"}, T),
    ("(cn$v=1.0.0+build.5)", {"cn": "1.0.0"}, T),
    ("(golem.runtime.version$v>=0.2.10)", OFFER, T),
    ("(cn$d>=10)", {"cn": "1"}, F),
    ("(cn$d=1.50)", {"cn": "1.5"}, T),
    ("(cn$d>=10)", {"cn": "dblah"}, U),
    ("(cn$d>=10)", {"cn": 11}, U),
    ("(cn$d>=1_0)", {"cn": "11"}, F),
    ("(cn$t<=1985-04-12T23:20:50.52Z)", {"cn": "1985-04-12T23:20:30.52Z"}, T),
    ("(cn$t<=1985-04-12T23:20:50.52Z)", {"cn": "1985-04-12T23:20:50.52Z"}, T),
    ("(cn$t<=1985-04-12T23:20:50.52Z)", {"cn": "1985-04-12T23:21:50.52Z"}, F),
    ("(cn$t=1985-04-12T23:20:50+01:00)", {"cn": "1985-04-12t22:20:50z"}, T),
    ("(cn$t<2000-01-01)", {"cn": "1985-04-12T23:20:50Z"}, F),
    ("(cn$t<2000-01-01T00:00:00Z)", {"cn": "yesterday"}, U),
    ("(cn$t<2000-01-01T00:00:00Z)", {"cn": "1985-13-12T23:20:50Z"}, U),
    # aspects are never set on REST offers: comparisons UNDEFINED, presence FALSE
    ("(a[aspect]=x)", {"a": "x"}, U),
    ("(a[aspect]=*)", {"a": "x"}, F),
    # not
    ("(!(cn=Tim Howes))", {"cn": "Babs Jensen"}, T),
    ("(!(cn=Tim Howes))", {"cn": "Tim Howes"}, F),
    ("(!(cn=Tim Howes))", {}, U),
    ("(!(!(cn=Tim Howes)))", {"cn": "Tim Howes"}, T),
    # and / or: Kleene logic
    ("(&(a=b)(b=c)(c=d))", {"a": "b", "b": "c", "c": "d"}, T),
    ("(&(a=b)(b=c)(c=d))", {"a": "x", "b": "c", "c": "d"}, F),
    ("(&(a=b)(b=c)(c=d))", {"b": "c", "c": "d"}, U),
    ("(&(a=b)(b=c)(c=d))", {"b": "c", "c": "x"}, F),
    ("(|(a=b)(b=c)(c=d))", {"a": "b", "b": "c", "c": "d"}, T),
    ("(|(a=b)(b=c)(c=d))", {"a": "x", "b": "y", "c": "z"}, F),
    ("(|(a=b)(b=c)(c=d))", {"b": "x", "c": "y"}, U),
    ("(|(a=b)(b=c)(c=d))", {"b": "c", "c": "y"}, T),
    ("(&(|(a=b)(b=c)(c=d))(!(x=dblah)))", {"a": "b", "b": "x", "x": "notdblah"}, T),
    ("(&(a>=1)(|(b=x)(c=*)))", {"a": 1, "c": 0}, T),
    ("(&(a>=1)(|(b=x)(c=*)))", {"a": 1}, U),
    ("(&(a>=1)(|(b=x)(c=*)))", {"a": 1, "b": "y"}, F),
    ("(&()(a=1))", {"a": 1}, T),
    # names are taken verbatim: '?', '{}', ':' and '/' included
    ("(golem.com.payment.debit-notes.accept-timeout?>=120)", OFFER, T),
    ("(golem.com.payment.debit-notes.accept-timeout>=120)", OFFER, U),
    ("(golem.com.pricing.est{30}<20)", {"golem.com.pricing.est{30}": 15}, T),
    (
        "(pkg=hash://sha3:D5E3:http://12.34.56.78:8000/x.zip)",
        {"pkg": "hash://sha3:D5E3:http://12.34.56.78:8000/x.zip"},
        T,
    ),
    # whitespace between terms, and around names and values
    ("( &  (a=b)  (b=c)  )", {"a": "b", "b": "c"}, T),
    ("(\n\t&\n\t(a=b)\n\t(|(b=x)\n\t\t(c=*))\n)", {"a": "b", "c": 1}, T),
    ("( !   (cn=Tim Howes))", {"cn": "Babs"}, T),
    ("( a = b )", {"a": "b"}, T),
    # nested properties, and yagna's @tag for a key that also has children
    ("(golem.inf.mem.gib>=4)", {"golem": {"inf": {"mem": {"gib": 8}}}}, T),
    ("(golem.inf.mem.gib>=4)", {"golem": {"inf": {"mem.gib": 2}}}, F),
    ("(golem.com.scheme=payu)", TAGGED, T),
    ("(golem.com.scheme.payu.interval-sec?=6)", TAGGED, T),
    # real constraints
    (DEMAND_CONSTRAINTS, OFFER, T),
    (DEMAND_CONSTRAINTS, {**OFFER, "golem.inf.mem.gib": 0.25}, F),
    (DEMAND_CONSTRAINTS, {**OFFER, "golem.runtime.name": "wasmtime"}, F),
    (DEMAND_CONSTRAINTS, {k: v for k, v in OFFER.items() if "erc20" not in k}, F),
    (DEMAND_CONSTRAINTS, {k: v for k, v in OFFER.items() if "protocol" not in k}, U),
    ("(golem.srv.comp.expiration>0)", DEMAND, T),
    (OFFER_CONSTRAINTS, DEMAND, T),
    (OFFER_CONSTRAINTS, {"golem.srv.comp.expiration": 1705586871000}, F),
    (OFFER_CONSTRAINTS, {}, U),
]


@pytest.mark.parametrize(("text", "properties", "expected"), RESOLVE_CASES)
def test_resolve(text: str, properties: dict[str, Any], expected: Truth) -> None:
    assert parse(text).resolve(properties) is expected
    assert matches(text, properties) is (expected is T)


def test_real_demand_and_offer_match_both_ways() -> None:
    assert match_demand_offer(DEMAND, DEMAND_CONSTRAINTS, OFFER, OFFER_CONSTRAINTS)
    stale = {**DEMAND, "golem.srv.comp.expiration": 1}
    assert not match_demand_offer(stale, DEMAND_CONSTRAINTS, OFFER, OFFER_CONSTRAINTS)
    small = {**OFFER, "golem.inf.storage.gib": 1}
    assert not match_demand_offer(DEMAND, DEMAND_CONSTRAINTS, small, OFFER_CONSTRAINTS)


def test_unsupported_property_value_type_is_an_error() -> None:
    with pytest.raises(TypeError, match="object"):
        matches("(a=1)", {"a": object()})


AST_CASES: list[tuple[str, Constraint]] = [
    ("", Empty()),
    ("(a=*)", Present(PropertyRef("a"))),
    ("(a=**)", Compare(PropertyRef("a"), "=", "**")),
    ("(a>=*)", Compare(PropertyRef("a"), ">=", "*")),
    ("(a=b=c)", Compare(PropertyRef("a"), "=", "b=c")),
    ("(a=<1)", Compare(PropertyRef("a"), "=", "<1")),
    ("(a<=1)", Compare(PropertyRef("a"), "<=", "1")),
    ("(a[x]$d<1)", Compare(PropertyRef("a", "x", "d"), "<", "1")),
    ("(a$v>=1.0.0)", Compare(PropertyRef("a", None, "v"), ">=", "1.0.0")),
    ("(!(a=1))", Not(Compare(PropertyRef("a"), "=", "1"))),
    ("(|(&)(!()))", Or((And(()), Not(Empty())))),
]


@pytest.mark.parametrize(("text", "ast"), AST_CASES)
def test_parse_builds_the_ast(text: str, ast: Constraint) -> None:
    assert parse(text) == ast


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", "()"),
        ("( )", "()"),
        ("( &\n  ( a = 1 )\n  (b=*)\n)", "(&(a=1)(b=*))"),
        ("(|(!(x<2))(y$v>1.0.0))", "(|(!(x<2))(y$v>1.0.0))"),
        (DEMAND_CONSTRAINTS, DEMAND_CONSTRAINTS.replace("\n\t", "")),
    ],
)
def test_str_renders_canonical_text(text: str, canonical: str) -> None:
    assert str(parse(text)) == canonical


MALFORMED: list[tuple[str, str, int]] = [
    ("(a=1", "'(' opened at position 0 is not closed", 4),
    ("(&(a=1)(b=2)", "'(' opened at position 0 is not closed", 12),
    ("(", "'(' opened at position 0 is not closed", 1),
    ("(a=1))", "unexpected text after the constraint", 5),
    (")", "expected '('", 0),
    ("a=1", "expected '('", 0),
    ("(a=1)(b=2)", "need '&' or '|'", 5),
    ("((a=1)(b=2))", "missing operator &, | or !", 1),
    ("(a)", "missing comparison operator after 'a'", 2),
    ("(a b=1)", "missing comparison operator after 'a'", 3),
    ("(a", "missing comparison operator after 'a'", 2),
    ("(=1)", "empty property name", 1),
    ("( >=1)", "empty property name", 2),
    ("(a!=1)", "'!=' is not an operator", 2),
    ("(a~=1)", "'~=' (approximate match) is not supported", 2),
    ("(!)", "'!' takes exactly one operand, got 0", 2),
    ("(!(a=1)(b=1))", "'!' takes exactly one operand, got 2", 12),
    ("(!a=1)", "expected '(' or ')' in the operands of '!'", 2),
    ("(&(a=1)x)", "expected '(' or ')' in the operands of '&'", 7),
    ("(|(a=1) b)", "expected '(' or ')' in the operands of '|'", 8),
    ("(a=f(x))", "unexpected '(' in the value compared with 'a'", 4),
    ("(a(b=1))", "unexpected '(' after 'a'", 2),
    ("(a$x=1)", "malformed property reference 'a$x'", 1),
    ("(a[x=1)", "malformed property reference 'a[x'", 1),
    ("(a]=1)", "malformed property reference 'a]'", 1),
]


@pytest.mark.parametrize(("text", "problem", "position"), MALFORMED)
def test_malformed_input_names_problem_and_position(text: str, problem: str, position: int) -> None:
    with pytest.raises(ConstraintSyntaxError) as caught:
        parse(text)
    assert problem in str(caught.value)
    assert f"at position {position} " in str(caught.value)
    assert caught.value.position == position
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("nested", "flat"),
    [
        ({}, {}),
        ({"golem": {"inf": {"mem.gib": 4}}}, {"golem.inf.mem.gib": 4}),
        ({"golem.inf.mem.gib": 4, "golem": {"runtime": {"name": "vm"}}},
         {"golem.inf.mem.gib": 4, "golem.runtime.name": "vm"}),
        (TAGGED, {"golem.com.scheme": "payu", "golem.com.scheme.payu.interval-sec?": 6.0}),
        ({"a": {}}, {"a": {}}),
        ({"a": [{"b": 1}]}, {"a": [{"b": 1}]}),
        ({"a": {"b": None}}, {"a.b": None}),
    ],
)  # fmt: skip
def test_flatten_properties(nested: dict[str, Any], flat: dict[str, Any]) -> None:
    assert flatten_properties(nested) == flat


# --- properties of generated constraints --------------------------------------------------------

# No deadline: a loaded CI machine must not turn slow examples into failures.
quick = settings(max_examples=75, deadline=None)
NAME_CHARS = "abcxyz.-_?{}0123456789*:/"
names = st.text(NAME_CHARS, min_size=1, max_size=8) | st.sampled_from(["a", "b", "c"])
refs = st.builds(PropertyRef, names, st.none() | st.just("asp"), st.none() | st.sampled_from("dvt"))
values = st.sampled_from(["1", "2.5", "-3", "abc", "ab*", "true", "[1,2]", "1.0.0", ""]) | st.text(
    st.characters(codec="utf-8", exclude_characters="()"), max_size=8
).map(str.strip)
# `(a<==x)` reads as `<=` then `=x`: a `<`/`>` value cannot start with `=` in the text form.
compares = st.builds(Compare, refs, st.sampled_from(["=", "<", "<=", ">", ">="]), values).filter(
    lambda c: (
        not (c.op == "=" and c.value == "*")
        and not (c.op in ("<", ">") and c.value.startswith("="))
    )
)


def trees(leaves: st.SearchStrategy[Constraint]) -> st.SearchStrategy[Constraint]:
    return st.recursive(
        leaves,
        lambda kids: st.one_of(
            st.lists(kids, max_size=3).map(lambda ops: And(tuple(ops))),
            st.lists(kids, max_size=3).map(lambda ops: Or(tuple(ops))),
            kids.map(Not),
        ),
        max_leaves=8,
    )


any_constraints = trees(st.one_of(compares, st.builds(Present, refs), st.just(Empty())))

# Small vocabulary, so generated constraints and properties often meet.
KEYS = ["a", "b", "c"]
simple_leaves = st.one_of(
    st.builds(
        Compare,
        st.builds(PropertyRef, st.sampled_from(KEYS)),
        st.sampled_from(["=", "<", ">="]),
        st.sampled_from(["1", "2", "x", "x*", "true", "[1,2]"]),
    ),
    st.builds(Present, st.builds(PropertyRef, st.sampled_from(KEYS))),
)
simple_constraints = trees(simple_leaves)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), st.sampled_from(["1", "x", "xy"]))
property_sets = st.dictionaries(st.sampled_from(KEYS), scalars | st.lists(scalars, max_size=3))


def pretty(node: Constraint, indent: str = "") -> str:
    """Multi-line rendering like ya-provider's and yapapi's, to test whitespace handling."""
    if isinstance(node, And | Or):
        inner = "".join(f"\n{indent}  {pretty(op, indent + '  ')}" for op in node.operands)
        return f"( {'&' if isinstance(node, And) else '|'}{inner}\n{indent})"
    if isinstance(node, Not):
        return f"(\t! {pretty(node.operand, indent)} )"
    return str(node)


@quick
@given(any_constraints)
def test_str_round_trips_through_parse(node: Constraint) -> None:
    assert parse(str(node)) == node
    assert parse(pretty(node)) == node


def parse_or_error(text: str) -> Constraint | ConstraintSyntaxError:
    try:
        return parse(text)
    except ConstraintSyntaxError as error:
        return error


@quick
@given(st.text("()&|!=<>~*ab. \n$[]dv", max_size=30))
def test_any_text_parses_or_raises_syntax_error(text: str) -> None:
    result = parse_or_error(text)  # anything but ConstraintSyntaxError escapes and fails
    if isinstance(result, ConstraintSyntaxError):
        assert 0 <= result.position <= len(text)
    else:
        assert parse(str(result)) == result


@quick
@given(st.lists(simple_constraints, max_size=4), property_sets)
def test_and_or_follow_their_operands(operands: list[Constraint], props: dict[str, Any]) -> None:
    results = [op.resolve(props) for op in operands]
    conjunction, disjunction = And(tuple(operands)), Or(tuple(operands))
    assert conjunction.evaluate(props) == all(r is T for r in results)
    assert (conjunction.resolve(props) is F) == any(r is F for r in results)
    assert disjunction.evaluate(props) == any(r is T for r in results)
    assert (disjunction.resolve(props) is F) == all(r is F for r in results)


@quick
@given(simple_constraints, simple_constraints, property_sets)
def test_de_morgan(a: Constraint, b: Constraint, props: dict[str, Any]) -> None:
    assert parse(f"(!(&{a}{b}))").resolve(props) is parse(f"(|(!{a})(!{b}))").resolve(props)
    assert parse(f"(!(|{a}{b}))").resolve(props) is parse(f"(&(!{a})(!{b}))").resolve(props)


@quick
@given(simple_constraints, property_sets)
def test_double_negation_and_excluded_middle(a: Constraint, props: dict[str, Any]) -> None:
    result = a.resolve(props)
    assert Not(Not(a)).resolve(props) is result
    # Without UNDEFINED, a or not-a would always hold; with it, it holds unless a is UNDEFINED.
    assert Or((a, Not(a))).resolve(props) is (U if result is U else T)


FLAT_KEYS = ["golem.inf.mem.gib", "golem.inf.storage.gib", "golem.runtime.name", "x"]


@quick
@given(st.dictionaries(st.sampled_from(FLAT_KEYS), scalars), simple_constraints)
def test_nested_properties_resolve_like_flat(flat: dict[str, Any], node: Constraint) -> None:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        branch = nested
        for part in parents:
            branch = branch.setdefault(part, {})
        branch[leaf] = value
    assert flatten_properties(nested) == flat
    renamed = parse(str(node).replace("(a", "(golem.inf.mem.gib").replace("(b", "(x"))
    assert renamed.resolve(nested) is renamed.resolve(flat)
