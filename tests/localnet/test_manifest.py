"""A localnet provider reads a demand's manifest like a real one and rejects a malformed one."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from golem_actors.localnet.manifest import manifest_problem
from golem_actors.localnet.offer import ProviderSpec, decide
from golem_actors.yagna import YagnaClient
from golem_actors.yagna.models import Allocation
from tests.localnet.requestor import demand
from tests.waiting import wait_for

MANIFEST = "golem.srv.comp.payload"
NODE_ID = "0x7f3c1e2d4b5a69788796a5b4c3d2e1f001122334"
NOW_MS = 1_700_000_000_000.0
DOC: dict[str, Any] = {
    "version": "0.1.0",
    "createdAt": "2023-01-01T00:00:00Z",
    "expiresAt": "2100-01-01T00:00:00Z",
    "payload": [{"hash": "sha3:9a3b5d67", "urls": ["http://registry.example/a.gvmi"]}],
    "compManifest": {
        "version": "0.1.0",
        "net": {"inet": {"out": {"protocols": ["https"], "urls": ["https://api.example.com"]}}},
    },
}
DEMAND: dict[str, Any] = {
    "golem.srv.comp.expiration": int(NOW_MS) + 30 * 60 * 1000,
    "golem.node.debug.subnet": "public",
    "golem.com.payment.platform.erc20-holesky-tglm.address": "0x" + "11" * 20,
}


def encode(doc: Any) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def without(*keys: str) -> dict[str, Any]:
    return {k: v for k, v in DOC.items() if k not in keys}


def test_no_manifest_or_a_good_one_is_no_problem() -> None:
    assert manifest_problem({}) is None
    assert manifest_problem({MANIFEST: encode(DOC)}) is None
    wrapped = "\n".join(encode(DOC)[i : i + 40] for i in range(0, len(encode(DOC)), 40))
    assert manifest_problem({MANIFEST: wrapped}) is None
    signed = {MANIFEST: encode(DOC), f"{MANIFEST}.sig": "ab", f"{MANIFEST}.sig.algorithm": "sha256"}
    assert manifest_problem({**signed, f"{MANIFEST}.cert": "Y2VydA=="}) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (42, "invalid manifest type: int"),
        ("%%% not base64", "invalid manifest: Error"),
        (base64.b64encode(b"{not json").decode(), "invalid manifest: JSONDecodeError"),
        (encode([1]), "not a JSON object"),
        (encode(without("version")), "bad version"),
        (encode(without("expiresAt")), "expiresAt is not an RFC 3339 time"),
        (encode(without("payload")), "payload is not a list"),
        (encode({**DOC, "payload": [{"urls": []}]}), "payload without hash"),
        (encode({**DOC, "payload": [{"hash": "h", "urls": ["not a url"]}]}), "bad URL in payload"),
        (encode({**DOC, "compManifest": {"version": "0.1.0", "net": []}}), "net is not an object"),
        (
            encode(
                {
                    **DOC,
                    "compManifest": {"version": "0.1.0", "net": {"inet": {"out": {"urls": ["x"]}}}},
                }
            ),
            "bad URL in compManifest.net.inet.out.urls",
        ),
    ],
)
def test_a_malformed_manifest_is_a_reason_to_reject(value: Any, problem: str) -> None:
    reason = manifest_problem({MANIFEST: value})
    assert reason is not None
    assert problem in reason


def test_a_signature_without_its_algorithm_and_certificate_is_refused() -> None:
    reason = manifest_problem({MANIFEST: encode(DOC), f"{MANIFEST}.sig": "ab"})
    assert reason is not None
    assert "algorithm and certificate are missing" in reason


def test_decide_rejects_a_malformed_manifest_and_counters_a_good_one() -> None:
    spec = ProviderSpec("provider-1")
    bad = decide(spec, NODE_ID, {**DEMAND, MANIFEST: encode(without("payload"))}, "", now_ms=NOW_MS)
    assert not bad.accept
    assert bad.reason == "invalid manifest: payload is not a list"
    good = decide(spec, NODE_ID, {**DEMAND, MANIFEST: encode(DOC)}, "", now_ms=NOW_MS)
    assert good.accept, good.reason
    assert "manifest-support" in good.properties["golem.runtime.capabilities"]


@pytest.mark.yagna
@pytest.mark.usefixtures("healthy_providers")
def test_a_provider_rejects_a_malformed_manifest_through_yagna_with_the_reason(
    client: YagnaClient, allocation: Allocation
) -> None:
    only = "(&(golem.runtime.name=vm)(golem.node.id.name=provider-2))"
    bad = demand(client, allocation, constraints=only, properties={MANIFEST: encode([1])})
    try:
        bad.counter(bad.offers(1)["provider-2"])
        wait_for("a rejection", lambda: bad.rejections or (bad.poll() and None), timeout=10)
        assert "invalid manifest: not a JSON object" in json.dumps(bad.rejections[0].reason)
    finally:
        bad.close()
    good = demand(client, allocation, constraints=only, properties={MANIFEST: encode(DOC)})
    try:
        answer = good.answer_to(good.counter(good.offers(1)["provider-2"]))
        assert answer.state == "Draft"
        assert good.rejections == []
    finally:
        good.close()
