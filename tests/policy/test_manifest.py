"""Computation manifests: decoded, checked field by field, expired ones refused. Pure code."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from typing import Any

import pytest

from golem_actors.localnet import constraints as matcher
from golem_actors.localnet.offer import ProviderSpec
from golem_actors.policy.demand import DemandSpec, build_demand
from golem_actors.policy.manifest import (
    CERT,
    MANIFEST,
    SIGNATURE,
    SIGNATURE_ALGORITHM,
    ManifestError,
    parse_manifest,
    signature_properties,
)
from golem_actors.policy.payload import CAPABILITIES, PACKAGE_FORMAT, PayloadError, VmPayload

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
HASH = "sha3:9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae"
DOC: dict[str, Any] = {
    "version": "0.1.0",
    "createdAt": "2025-01-01T00:00:00Z",
    "expiresAt": "2030-01-01T00:00:00+00:00",
    "metadata": {"name": "outbound example", "version": "0.1.0"},
    "payload": [
        {
            "platform": {"arch": "x86_64", "os": "linux"},
            "urls": ["http://registry.example/alpine.gvmi"],
            "hash": HASH,
        }
    ],
    "compManifest": {
        "version": "0.1.0",
        "script": {"commands": ["run .*", "transfer .*"], "match": "regex"},
        "net": {
            "inet": {
                "out": {
                    "protocols": ["https", "wss"],
                    "urls": ["https://api.example.com/v1", "wss://stream.example.com"],
                }
            }
        },
    },
}
CERT_B64 = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB...\n").decode()
SIGNED: dict[str, Any] = {
    "manifest_sig": "ab" * 32,
    "manifest_sig_algorithm": "sha256",
    "manifest_cert": CERT_B64,
}
PLATFORM = "erc20-holesky-tglm"
DECORATION = {f"golem.com.payment.platform.{PLATFORM}.address": "0xaa"}


def encode(doc: Any) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def changed(path: str, value: Any) -> dict[str, Any]:
    """DOC with the value at a dotted path (list indexes as numbers) replaced; None deletes."""
    doc = copy.deepcopy(DOC)
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return doc


def test_a_good_manifest_is_decoded_with_its_times_and_outbound_urls() -> None:
    manifest = parse_manifest(encode(DOC))
    assert manifest.document == DOC
    assert manifest.created_at == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert manifest.expires_at == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert manifest.outbound_urls == ("https://api.example.com/v1", "wss://stream.example.com")
    manifest.check_current(NOW)


def test_wrapped_base64_is_accepted_and_sent_without_its_line_breaks() -> None:
    text = encode(DOC)
    wrapped = "\n".join(text[i : i + 60] for i in range(0, len(text), 60)) + "\n"
    assert parse_manifest(wrapped).encoded == text


def test_a_minimal_manifest_without_comp_manifest_asks_no_outbound_access() -> None:
    minimal = {k: DOC[k] for k in ("version", "createdAt", "expiresAt", "payload")}
    assert parse_manifest(encode(minimal)).outbound_urls == ()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "non-empty base64"),
        ("not base64!!", "not valid base64"),
        (base64.b64encode(b"hello").decode(), "not JSON"),
        (base64.b64encode(b"\xff\xfe").decode(), "not JSON"),
        (encode([1, 2]), "manifest must be a JSON object"),
    ],
)
def test_what_is_not_a_manifest_at_all_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ManifestError, match=problem):
        parse_manifest(text)


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("version", None, "manifest.version"),
        ("version", "1.0", "manifest.version"),
        ("createdAt", None, "manifest.createdAt"),
        ("createdAt", "yesterday", "manifest.createdAt"),
        ("createdAt", "2025-01-01T00:00:00", "manifest.createdAt"),  # no zone
        ("expiresAt", 1700000000, "manifest.expiresAt"),
        ("expiresAt", "2024-01-01T00:00:00Z", "manifest.expiresAt must come after"),
        ("payload", [], "manifest.payload must name"),
        ("payload", {"hash": HASH}, "manifest.payload must be a JSON list"),
        ("payload.0.hash", "9a3b5d67", "manifest.payload\\[0\\].hash"),
        ("payload.0.urls", None, "manifest.payload\\[0\\].urls"),
        ("payload.0.urls", ["ftp://x/y.gvmi"], "manifest.payload\\[0\\].urls\\[0\\]"),
        ("payload.0.platform", {"arch": 64}, "manifest.payload\\[0\\].platform.arch"),
        ("metadata", {"name": 1}, "manifest.metadata.name"),
        ("compManifest.version", None, "manifest.compManifest.version"),
        ("compManifest.script.commands", "run .*", "manifest.compManifest.script.commands"),
        ("compManifest.script.match", "fuzzy", "manifest.compManifest.script.match"),
        ("compManifest.net.inet.out.protocols", ["ftp"], "out.protocols may hold only"),
        ("compManifest.net.inet.out.urls", ["ftp://files.example"], "out.urls\\[0\\]"),
        ("compManifest.net.inet.out.urls", ["http://x.example"], "must be a https/wss URL"),
        ("compManifest.net.inet.out.urls", ["https://"], "out.urls\\[0\\]"),
        ("compManifest.net.inet.out.urls", ["https://a b.example"], "out.urls\\[0\\]"),
        ("compManifest.net.inet.out.urls", "https://x", "out.urls must be a JSON list"),
        ("compManifest.net.inet", [], "manifest.compManifest.net.inet must be a JSON object"),
    ],
)
def test_each_bad_field_is_named(path: str, value: Any, named: str) -> None:
    with pytest.raises(ManifestError, match=named):
        parse_manifest(encode(changed(path, value)))


def test_outbound_urls_default_to_every_web_protocol() -> None:
    doc = changed("compManifest.net.inet.out.protocols", None)
    doc["compManifest"]["net"]["inet"]["out"]["urls"] = ["http://a.example", "ws://b.example"]
    assert parse_manifest(encode(doc)).outbound_urls == ("http://a.example", "ws://b.example")


def test_an_expired_manifest_or_one_from_the_future_is_refused_given_the_time() -> None:
    manifest = parse_manifest(encode(DOC))
    with pytest.raises(ManifestError, match=r"manifest.expiresAt 2030-01-01T00:00:00\+00:00 has"):
        manifest.check_current(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(ManifestError, match=r"manifest.createdAt .* is in the future"):
        manifest.check_current(dt.datetime(2024, 12, 31, tzinfo=dt.UTC))
    manifest.check_current(dt.datetime(2024, 12, 31, 23, 58, tzinfo=dt.UTC))  # clock skew


def test_a_signature_comes_with_its_algorithm_and_certificate() -> None:
    assert signature_properties(None, None, None) == {}
    props = signature_properties(SIGNED["manifest_sig"], "sha256", CERT_B64)
    assert props == {SIGNATURE: "ab" * 32, SIGNATURE_ALGORITHM: "sha256", CERT: CERT_B64}
    with pytest.raises(ManifestError, match="needs manifest_sig_algorithm, manifest_cert too"):
        signature_properties("ab", None, None)
    with pytest.raises(ManifestError, match="manifest_sig_algorithm must be one of"):
        signature_properties("ab", "md5", CERT_B64)
    with pytest.raises(ManifestError, match="manifest_cert must be a base64"):
        signature_properties("ab", "sha256", "not base64!")
    with pytest.raises(ManifestError, match="manifest_sig must be a non-empty"):
        signature_properties(" ", "sha256", CERT_B64)


def test_a_payload_with_a_manifest_carries_it_and_asks_for_manifest_support() -> None:
    payload = VmPayload(manifest=encode(DOC), **SIGNED)
    props = payload.properties()
    assert props[MANIFEST] == encode(DOC)
    assert (props[SIGNATURE], props[SIGNATURE_ALGORITHM], props[CERT]) == (
        "ab" * 32,
        "sha256",
        CERT_B64,
    )
    assert props[PACKAGE_FORMAT] == "gvmkit-squash"
    assert f"({CAPABILITIES}=manifest-support)" in payload.constraints()
    twice = VmPayload(manifest=encode(DOC), capabilities=("manifest-support", "inet"))
    assert twice.constraints().count(f"({CAPABILITIES}=manifest-support)") == 1
    assert f"({CAPABILITIES}=manifest-support)" not in VmPayload().constraints()


def test_localnet_offers_match_a_manifest_demand() -> None:
    offer = ProviderSpec("p1").offer_properties("0x01")
    assert matcher.matches(
        "(&" + "".join(VmPayload(manifest=encode(DOC)).constraints()) + ")", offer
    )


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"manifest": "%%%"}, "manifest is not valid base64"),
        ({"manifest": encode(changed("version", None))}, "manifest.version"),
        ({"manifest_sig": "ab"}, "need a manifest"),
        ({"manifest": encode(DOC), "manifest_sig": "ab"}, "needs manifest_sig_algorithm"),
    ],
)
def test_a_payload_refuses_a_bad_manifest_when_it_is_made(kwargs, problem) -> None:
    with pytest.raises(PayloadError, match=problem):
        VmPayload(**kwargs)


def test_the_demand_refuses_an_expired_manifest_and_carries_a_current_one() -> None:
    spec = DemandSpec(VmPayload(manifest=encode(DOC)))
    demand = build_demand(
        spec, now=NOW, decoration_properties=DECORATION, decoration_constraints=[]
    )
    assert demand.properties[MANIFEST] == encode(DOC)
    assert f"({CAPABILITIES}=manifest-support)" in demand.constraints
    with pytest.raises(PayloadError, match=r"manifest\.expiresAt"):
        build_demand(
            spec,
            now=dt.datetime(2031, 1, 1, tzinfo=dt.UTC),
            decoration_properties=DECORATION,
            decoration_constraints=[],
        )
