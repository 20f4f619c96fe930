"""The VM payload a demand asks for: which image, and the least a provider must have. Pure code.

It mirrors yapapi's ``vm.repo`` / ``_VmPackage`` and golem-js's workload director: the image goes
into ``golem.srv.comp.task_package`` as ``hash:sha3:<sha3 hex>:<url>`` (with
``golem.srv.comp.vm.package_format=gvmkit-squash``), and the resources become ``>=`` constraints on
``golem.inf.*`` plus ``golem.runtime.name`` and one ``golem.runtime.capabilities`` per capability.
A computation manifest (``manifest=``, for outbound network access; see ``policy.manifest``) is
checked when the payload is made and adds its properties and the ``manifest-support`` capability.

An image named by tag (``golem/alpine:latest``) or by bare hash needs a registry lookup, which is
I/O and so not done here: ``properties`` takes a resolver, and without one such a payload fails
with ``PayloadError``. A ``Golem`` session passes ``images.registry.RegistryResolver``, which asks
the registry's ``/v1/image/info`` (``https://registry.golem.network``, or ``GOLEM_REGISTRY_URL`` /
``Golem(registry_url=...)``) once per image. A hash given with a URL, or a ready task package,
needs no lookup (golem-js builds the string directly; the provider checks the hash when it
downloads). A payload with no image at all is allowed: localnet's providers then run their
default host image.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from golem_actors.errors import GolemActorsError
from golem_actors.policy.manifest import (
    MANIFEST,
    MANIFEST_SUPPORT,
    ManifestError,
    parse_manifest,
    signature_properties,
)

__all__ = [
    "CAPABILITIES",
    "PACKAGE_FORMAT",
    "TASK_PACKAGE",
    "ImageResolver",
    "PayloadError",
    "VmPayload",
    "no_resolver",
    "parse_task_package",
]

TASK_PACKAGE: Final = "golem.srv.comp.task_package"
PACKAGE_FORMAT: Final = "golem.srv.comp.vm.package_format"
CAPABILITIES: Final = "golem.runtime.capabilities"

_SHA3_224_HEX: Final = 56
# ``hash:sha3:<hex>:<url>``; the exe-unit picks the sha3 variant from the digest length.
_SHA3_HEX_LENGTHS: Final = frozenset({56, 64, 96, 128})
_HEX = re.compile(r"[0-9a-fA-F]+")
_URL = re.compile(r"https?://[^\s/]+\S*")
# What may not appear in a word that goes into a constraint: the filter syntax and whitespace.
_NOT_IN_WORD: Final = frozenset("()=<>~[]$*&|!\\")


class PayloadError(GolemActorsError, ValueError):
    """The payload is malformed, or its image cannot be turned into a task package."""


ImageResolver = Callable[["VmPayload"], "str | None"]


def no_resolver(_payload: VmPayload) -> str | None:
    """A resolver that knows no image: a payload needing a registry lookup then fails clearly."""
    return None


def _plain_word(value: Any, what: str) -> str:
    if (
        not isinstance(value, str)
        or not value
        or any(c.isspace() or c in _NOT_IN_WORD for c in value)
    ):
        raise PayloadError(f"{what} must be a non-empty word without spaces or ()=<>~[]$*&|!")
    return value


def _url(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _URL.fullmatch(value):
        raise PayloadError(f"{what} must be an http(s) URL without spaces, got {value!r}")
    return value


def parse_task_package(text: str) -> tuple[str, str]:
    """Split ``hash:sha3:<hex>:<url>`` into (hex digest, url); raises PayloadError if malformed."""
    prefix = "hash:sha3:"
    if not isinstance(text, str) or not text.startswith(prefix):
        raise PayloadError(f"task package must look like hash:sha3:<hex>:<url>, got {text!r}")
    digest, sep, url = text[len(prefix) :].partition(":")
    if not sep or not _HEX.fullmatch(digest) or len(digest) not in _SHA3_HEX_LENGTHS:
        raise PayloadError(
            f"task package must carry a sha3 hex digest (56, 64, 96 or 128 digits), got {text!r}"
        )
    _url(url, "task package URL")
    return digest.lower(), url


def _positive(value: Any, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise PayloadError(f"{what} must be a positive number, got {value!r}")
    return value


@dataclass(frozen=True)
class VmPayload:
    """A VM image (by hash, tag, hash + URL, or a ready task package) and minimum resources."""

    image_hash: str | None = None
    image_url: str | None = None
    image_tag: str | None = None
    task_package: str | None = None
    min_mem_gib: float = 0.5
    min_storage_gib: float = 2.0
    min_cpu_threads: int = 1
    capabilities: tuple[str, ...] = ()
    runtime: str = "vm"
    manifest: str | None = None  # base64 JSON computation manifest
    manifest_sig: str | None = None
    manifest_sig_algorithm: str | None = None  # sha224, sha256, sha384 or sha512
    manifest_cert: str | None = None  # base64 certificate (DER or PEM) of the signing key

    def __post_init__(self) -> None:
        self._check_image()
        self._check_manifest()
        _positive(self.min_mem_gib, "min_mem_gib")
        _positive(self.min_storage_gib, "min_storage_gib")
        threads = self.min_cpu_threads
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise PayloadError(f"min_cpu_threads must be an integer >= 1, got {threads!r}")
        given: object = self.capabilities
        if isinstance(given, str) or not isinstance(given, list | tuple):
            raise PayloadError("capabilities must be a tuple (or list) of words, not one string")
        caps = tuple(given)
        for cap in caps:
            _plain_word(cap, f"capability {cap!r}")
        if len(set(caps)) != len(caps):
            raise PayloadError(f"capabilities name one twice: {list(caps)}")
        object.__setattr__(self, "capabilities", caps)
        _plain_word(self.runtime, "runtime")

    def _check_image(self) -> None:
        sources = [
            name
            for name in ("image_hash", "image_tag", "task_package")
            if getattr(self, name) is not None
        ]
        if len(sources) > 1:
            raise PayloadError(f"give at most one image source, got {' and '.join(sources)}")
        if self.image_hash is not None:
            h = self.image_hash
            if not isinstance(h, str) or not _HEX.fullmatch(h) or len(h) != _SHA3_224_HEX:
                raise PayloadError(
                    f"image_hash must be a sha3-224 digest (56 hex digits), got {h!r}"
                )
            object.__setattr__(self, "image_hash", h.lower())
        if self.image_url is not None:
            if self.image_hash is None:
                raise PayloadError(
                    "image_url needs image_hash: the provider checks the image against it "
                    "(an image_tag is only resolved through a registry)"
                )
            _url(self.image_url, "image_url")
        if self.image_tag is not None:
            _plain_tag(self.image_tag)
        if self.task_package is not None:
            parse_task_package(self.task_package)

    def _check_manifest(self) -> None:
        signature = (self.manifest_sig, self.manifest_sig_algorithm, self.manifest_cert)
        if self.manifest is None:
            if any(x is not None for x in signature):
                raise PayloadError("manifest_sig, _sig_algorithm and _cert need a manifest")
            return
        try:
            encoded = parse_manifest(self.manifest).encoded
            signature_properties(*signature)
        except ManifestError as exc:
            raise PayloadError(str(exc)) from None
        object.__setattr__(self, "manifest", encoded)

    def check_manifest(self, now: dt.datetime) -> None:
        """Refuse a manifest expired by ``now``: no provider would run it."""
        if self.manifest is not None:
            try:
                parse_manifest(self.manifest).check_current(now)
            except ManifestError as exc:
                raise PayloadError(str(exc)) from None

    @property
    def has_image(self) -> bool:
        return any(x is not None for x in (self.image_hash, self.image_tag, self.task_package))

    @property
    def image_name(self) -> str:
        """How error messages name the image."""
        if self.task_package is not None:
            return f"task package {self.task_package}"
        if self.image_hash is not None:
            suffix = f" at {self.image_url}" if self.image_url else ""
            return f"image hash {self.image_hash}{suffix}"
        if self.image_tag is not None:
            return f"image tag {self.image_tag}"
        return "the provider's default image"

    def resolve_task_package(self, resolve: ImageResolver = no_resolver) -> str | None:
        """The ``hash:sha3:<hex>:<url>`` for this image (None without an image).

        ``resolve`` is asked only when a registry lookup is needed (a hash without URL, or a tag).
        What it returns is checked, and for a hash it must name that same hash.
        """
        if self.task_package is not None:
            return self.task_package
        if self.image_hash is not None and self.image_url is not None:
            return f"hash:sha3:{self.image_hash}:{self.image_url}"
        if not self.has_image:
            return None
        resolved = resolve(self)
        if resolved is None:
            raise PayloadError(f"{self.image_name} cannot be resolved to a task package")
        try:
            digest, _url_part = parse_task_package(resolved)
        except PayloadError as exc:
            raise PayloadError(f"{self.image_name} resolved to a bad task package: {exc}") from None
        if self.image_hash is not None and digest != self.image_hash:
            raise PayloadError(f"{self.image_name} resolved to another image's hash {digest}")
        return resolved

    def properties(self, resolve: ImageResolver = no_resolver) -> dict[str, Any]:
        """The demand properties for this payload (empty without an image or manifest)."""
        package = self.resolve_task_package(resolve)
        props: dict[str, Any] = {} if package is None else {TASK_PACKAGE: package}
        if self.manifest is not None:
            props[MANIFEST] = self.manifest
            props.update(
                signature_properties(
                    self.manifest_sig, self.manifest_sig_algorithm, self.manifest_cert
                )
            )
        if props and self.runtime.startswith("vm"):
            props[PACKAGE_FORMAT] = "gvmkit-squash"
        return props

    def constraints(self) -> list[str]:
        """One constraint per requirement, in the order yapapi's ``_VmConstraints`` lists them."""
        return [
            f"(golem.inf.mem.gib>={self.min_mem_gib})",
            f"(golem.inf.storage.gib>={self.min_storage_gib})",
            f"(golem.inf.cpu.threads>={self.min_cpu_threads})",
            f"(golem.runtime.name={self.runtime})",
            *(f"({CAPABILITIES}={cap})" for cap in self._needed_capabilities()),
        ]

    def _needed_capabilities(self) -> tuple[str, ...]:
        if self.manifest is not None and MANIFEST_SUPPORT not in self.capabilities:
            return (*self.capabilities, MANIFEST_SUPPORT)
        return self.capabilities


def _plain_tag(tag: Any) -> None:
    """Registry tags look like ``golem/alpine:latest``; they go into a URL query, never a filter."""
    if not isinstance(tag, str) or not tag or any(c.isspace() for c in tag) or "&" in tag:
        raise PayloadError(f"image_tag must be a non-empty tag without spaces or '&', got {tag!r}")
