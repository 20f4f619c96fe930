"""The VM payload: validation, task package, constraints. Pure code."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from golem_actors.localnet import constraints as matcher
from golem_actors.localnet.offer import ProviderSpec
from golem_actors.policy.payload import (
    PACKAGE_FORMAT,
    TASK_PACKAGE,
    PayloadError,
    VmPayload,
    parse_task_package,
)

HASH = "9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae"  # sha3-224: 56 hex digits
OTHER_HASH = "d646d7b93083d817846c2ae5c62c72ca0507782385a2e29291a3d376"
URL = "http://registry.golem.network/download/9a3b5d67b0.gvmi"
PACKAGE = f"hash:sha3:{HASH}:{URL}"
NODE_ID = "0x7f3c1e2d4b5a69788796a5b4c3d2e1f001122334"


class Registry:
    """A fake image registry that records what it was asked."""

    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.asked: list[VmPayload] = []

    def __call__(self, payload: VmPayload) -> str | None:
        self.asked.append(payload)
        return self.answer


def test_defaults_follow_yapapi_vm_repo():
    payload = VmPayload()
    assert (payload.min_mem_gib, payload.min_storage_gib, payload.min_cpu_threads) == (0.5, 2.0, 1)
    assert payload.runtime == "vm"
    assert payload.capabilities == ()
    assert not payload.has_image


def test_constraints_name_each_requirement():
    payload = VmPayload(
        image_hash=HASH, min_mem_gib=1, min_storage_gib=4.5, min_cpu_threads=2,
        capabilities=("vpn", "inet"),
    )  # fmt: skip
    assert payload.constraints() == [
        "(golem.inf.mem.gib>=1)",
        "(golem.inf.storage.gib>=4.5)",
        "(golem.inf.cpu.threads>=2)",
        "(golem.runtime.name=vm)",
        "(golem.runtime.capabilities=vpn)",
        "(golem.runtime.capabilities=inet)",
    ]


def test_no_image_adds_no_task_package_and_asks_no_registry():
    registry = Registry(PACKAGE)
    assert VmPayload().properties(registry) == {}
    assert registry.asked == []


def test_hash_with_url_needs_no_registry():
    registry = Registry(None)
    props = VmPayload(image_hash=HASH.upper(), image_url=URL).properties(registry)
    assert props == {TASK_PACKAGE: PACKAGE, PACKAGE_FORMAT: "gvmkit-squash"}
    assert registry.asked == []


def test_ready_task_package_is_used_as_given():
    assert VmPayload(task_package=PACKAGE).properties() == {
        TASK_PACKAGE: PACKAGE,
        PACKAGE_FORMAT: "gvmkit-squash",
    }


@pytest.mark.parametrize("source", [{"image_hash": HASH}, {"image_tag": "golem/alpine:latest"}])
def test_hash_or_tag_alone_is_resolved(source: dict[str, Any]):
    registry = Registry(PACKAGE)
    payload = VmPayload(**source)
    assert payload.properties(registry)[TASK_PACKAGE] == PACKAGE
    assert registry.asked == [payload]


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ({"image_hash": HASH}, f"image hash {HASH}"),
        ({"image_tag": "me/app:1.0"}, "image tag me/app"),
    ],
)
def test_an_image_that_cannot_be_resolved_is_an_error_naming_it(source, named):
    with pytest.raises(PayloadError, match=f"{named}.*cannot be resolved"):
        VmPayload(**source).properties(Registry(None))
    with pytest.raises(PayloadError, match="cannot be resolved"):
        VmPayload(**source).properties()  # no resolver at all


def test_a_resolver_answer_is_checked():
    with pytest.raises(PayloadError, match="resolved to a bad task package"):
        VmPayload(image_tag="me/app:1").properties(Registry("http://example.com/x.gvmi"))
    with pytest.raises(PayloadError, match=f"another image's hash {OTHER_HASH}"):
        VmPayload(image_hash=HASH).properties(Registry(f"hash:sha3:{OTHER_HASH}:{URL}"))


def test_non_vm_runtime_gets_no_vm_package_format():
    props = VmPayload(task_package=PACKAGE, runtime="wasmtime").properties()
    assert props == {TASK_PACKAGE: PACKAGE}


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"image_hash": HASH, "image_tag": "a:1"}, "at most one image source, got image_hash and"),
        ({"image_tag": "a:1", "task_package": PACKAGE}, "at most one image source"),
        ({"image_hash": HASH, "task_package": PACKAGE}, "at most one image source"),
        ({"image_url": URL}, "image_url needs image_hash"),
        ({"image_url": URL, "image_tag": "a:1"}, "image_url needs image_hash"),
        ({"image_hash": HASH[:-1]}, "image_hash must be a sha3-224 digest"),
        ({"image_hash": HASH + "00"}, "image_hash must be a sha3-224 digest"),
        ({"image_hash": "z" * 56}, "image_hash must be a sha3-224 digest"),
        ({"image_hash": HASH, "image_url": "ftp://x/y"}, "image_url must be an http"),
        ({"image_hash": HASH, "image_url": "http://x/a b"}, "image_url must be an http"),
        ({"image_tag": ""}, "image_tag must be"),
        ({"image_tag": "a b"}, "image_tag must be"),
        ({"task_package": URL}, "task package must look like"),
        ({"task_package": f"hash:sha3:{HASH[:10]}:{URL}"}, "sha3 hex digest"),
        ({"task_package": f"hash:sha3:{HASH}:"}, "task package URL"),
        ({"min_mem_gib": 0}, "min_mem_gib must be a positive number"),
        ({"min_mem_gib": -1.0}, "min_mem_gib must be a positive number"),
        ({"min_mem_gib": float("nan")}, "min_mem_gib must be a positive number"),
        ({"min_storage_gib": 0.0}, "min_storage_gib must be a positive number"),
        ({"min_storage_gib": "2"}, "min_storage_gib must be a positive number"),
        ({"min_cpu_threads": 0}, "min_cpu_threads must be an integer >= 1"),
        ({"min_cpu_threads": 1.5}, "min_cpu_threads must be an integer >= 1"),
        ({"min_cpu_threads": True}, "min_cpu_threads must be an integer >= 1"),
        ({"capabilities": "vpn"}, "capabilities must be a tuple"),
        ({"capabilities": ("vpn", "vpn")}, "name one twice"),
        ({"capabilities": ("v pn",)}, "capability 'v pn'"),
        ({"capabilities": ("vpn)(x=1",)}, "capability"),
        ({"runtime": ""}, "runtime must be"),
        ({"runtime": "vm)"}, "runtime must be"),
    ],
)
def test_bad_payloads_are_refused_naming_the_field(kwargs, problem):
    with pytest.raises(PayloadError, match=problem):
        VmPayload(**kwargs)


def test_a_capability_list_becomes_a_tuple():
    payload = VmPayload(capabilities=["vpn"])  # type: ignore[arg-type]
    assert payload.capabilities == ("vpn",)


@pytest.mark.parametrize("digits", [56, 64, 96, 128])
def test_task_package_accepts_every_sha3_digest_length(digits):
    digest = "ab" * (digits // 2)
    assert parse_task_package(f"hash:sha3:{digest}:{URL}") == (digest, URL)


def offer(spec: ProviderSpec) -> dict[str, Any]:
    return spec.offer_properties(NODE_ID)


def test_default_payload_matches_a_default_localnet_provider():
    for line in VmPayload().constraints():
        assert matcher.matches(line, offer(ProviderSpec("p1"))), line


@given(
    mem=st.floats(min_value=0.1, max_value=64),
    storage=st.floats(min_value=0.1, max_value=256),
    threads=st.integers(min_value=1, max_value=32),
    have_mem=st.floats(min_value=0.1, max_value=64),
    have_storage=st.floats(min_value=0.1, max_value=256),
    have_threads=st.integers(min_value=1, max_value=32),
    caps=st.sets(st.sampled_from(["vpn", "inet", "gpu", "manifest-support"]), max_size=3),
)
def test_payload_matches_exactly_the_providers_that_meet_it(
    *, mem, storage, threads, have_mem, have_storage, have_threads, caps
):
    payload = VmPayload(
        min_mem_gib=mem,
        min_storage_gib=storage,
        min_cpu_threads=threads,
        capabilities=tuple(sorted(caps)),
    )
    spec = ProviderSpec("p1", cpu_threads=have_threads, mem_gib=have_mem, storage_gib=have_storage)
    fits = (
        have_mem >= mem
        and have_storage >= storage
        and have_threads >= threads
        and caps <= set(spec.capabilities)
    )
    text = "(&" + "".join(payload.constraints()) + ")"
    assert matcher.matches(text, offer(spec)) == fits
