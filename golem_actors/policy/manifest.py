"""Computation payload manifests: what a demand carries to ask for outbound network access. Pure.

A manifest is a JSON document, base64-encoded into the demand property ``golem.srv.comp.payload``
(optionally signed: ``.sig``, ``.sig.algorithm``, ``.cert``), which a provider decodes before it
agrees; with it the demand constrains ``golem.runtime.capabilities=manifest-support``. Names and
shape follow yagna's ``ya-manifest-utils`` (``AppManifest``, camelCase) and yapapi's
``vm.manifest``::

    {"version": "0.1.0", "createdAt": "<RFC 3339>", "expiresAt": "<RFC 3339>",
     "payload": [{"hash": "sha3:<hex>", "urls": ["http://.../image.gvmi"],
                  "platform": {"arch": "x86_64", "os": "linux"}}],
     "compManifest": {"version": "0.1.0",
                      "script": {"commands": ["run .*"], "match": "regex"},
                      "net": {"inet": {"out": {"protocols": ["https"],
                                               "urls": ["https://api.example.com"]}}}}}

Everything a provider would refuse is refused here first, with the field named, so a bad
manifest never reaches the market: bad base64, not JSON, a missing or mistyped field, outbound
URLs that are not http/https/ws/wss (or not among the protocols it lists), and (given the time)
a manifest already expired.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from golem_actors.errors import GolemActorsError

__all__ = [
    "CERT",
    "MANIFEST",
    "MANIFEST_SUPPORT",
    "SIGNATURE",
    "SIGNATURE_ALGORITHM",
    "SIGNATURE_ALGORITHMS",
    "Manifest",
    "ManifestError",
    "parse_manifest",
    "signature_properties",
]

MANIFEST: Final = "golem.srv.comp.payload"
SIGNATURE: Final = "golem.srv.comp.payload.sig"
SIGNATURE_ALGORITHM: Final = "golem.srv.comp.payload.sig.algorithm"
CERT: Final = "golem.srv.comp.payload.cert"
MANIFEST_SUPPORT: Final = "manifest-support"
SIGNATURE_ALGORITHMS: Final = frozenset({"sha224", "sha256", "sha384", "sha512"})
INET_PROTOCOLS: Final = ("http", "https", "ws", "wss")
_SEMVER = re.compile(r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?")
_HASH = re.compile(r"[A-Za-z0-9-]+:(?:[0-9a-fA-F]{2})+")


class ManifestError(GolemActorsError, ValueError):
    """The manifest cannot be sent; the message names the field (``manifest.<path>``)."""


@dataclass(frozen=True)
class Manifest:
    """A decoded, checked manifest: its wire form and what the checks need later."""

    encoded: str  # base64, whitespace removed
    document: Mapping[str, Any]
    created_at: dt.datetime
    expires_at: dt.datetime
    outbound_urls: tuple[str, ...]

    def check_current(self, now: dt.datetime) -> None:
        """Refuse a manifest that has expired by ``now`` (or claims to be made after it)."""
        if self.expires_at <= now:
            raise ManifestError(
                f"manifest.expiresAt {self.expires_at.isoformat()} has passed "
                f"(now {now.isoformat()}): make a new manifest"
            )
        if self.created_at > now + dt.timedelta(minutes=5):  # a little clock skew is forgiven
            raise ManifestError(
                f"manifest.createdAt {self.created_at.isoformat()} is in the future"
            )


def _decode(encoded: Any) -> tuple[str, Any]:
    if not isinstance(encoded, str) or not encoded.strip():
        raise ManifestError("manifest must be a non-empty base64 string")
    compact = "".join(encoded.split())  # base64 tools wrap lines; yagna drops the whitespace too
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ManifestError(f"manifest is not valid base64: {exc}") from None
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"manifest is not JSON: {exc}") from None
    return compact, document


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def _optional_object(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = parent.get(key)
    return {} if value is None else _object(value, f"{where}.{key}")


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ManifestError(f"{where} must be a JSON list, got {type(value).__name__}")
    return value


def _semver(value: Any, where: str) -> None:
    if not isinstance(value, str) or not _SEMVER.fullmatch(value):
        raise ManifestError(f"{where} must be a semantic version like 0.1.0, got {value!r}")


def _time(value: Any, where: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ManifestError(
            f"{where} must be an RFC 3339 time with a zone, like 2025-01-01T00:00:00Z, "
            f"got {value!r}"
        )
    return parsed


def _url(value: Any, where: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if (
        parts is None
        or parts.scheme not in schemes
        or not parts.hostname
        or any(c.isspace() for c in value)
    ):
        raise ManifestError(f"{where} must be a {'/'.join(schemes)} URL, got {value!r}")
    return str(value)


def _check_payload(document: Mapping[str, Any]) -> None:
    images = _list(document.get("payload"), "manifest.payload")
    if not images:
        raise ManifestError("manifest.payload must name at least one image")
    for i, item in enumerate(images):
        where = f"manifest.payload[{i}]"
        image = _object(item, where)
        digest = image.get("hash")
        if not isinstance(digest, str) or not _HASH.fullmatch(digest):
            raise ManifestError(f"{where}.hash must look like sha3:<hex>, got {digest!r}")
        for j, url in enumerate(_list(image.get("urls"), f"{where}.urls")):
            _url(url, f"{where}.urls[{j}]", ("http", "https"))
        platform = _optional_object(image, "platform", where)
        for key in ("arch", "os"):
            if platform and not isinstance(platform.get(key), str):
                raise ManifestError(f"{where}.platform.{key} must be a string")


def _check_comp_manifest(document: Mapping[str, Any]) -> tuple[str, ...]:
    """The outbound URLs the manifest asks for (empty: none listed)."""
    comp = _optional_object(document, "compManifest", "manifest")
    if not comp:
        return ()
    _semver(comp.get("version"), "manifest.compManifest.version")
    script = _optional_object(comp, "script", "manifest.compManifest")
    if script:
        for i, command in enumerate(
            _list(script.get("commands"), "manifest.compManifest.script.commands")
        ):
            if not isinstance(command, str):
                raise ManifestError(f"manifest.compManifest.script.commands[{i}] must be a string")
        if script.get("match", "strict") not in {"strict", "regex"}:
            raise ManifestError("manifest.compManifest.script.match must be strict or regex")
    net = _optional_object(comp, "net", "manifest.compManifest")
    inet = _optional_object(net, "inet", "manifest.compManifest.net")
    out = _optional_object(inet, "out", "manifest.compManifest.net.inet")
    where = "manifest.compManifest.net.inet.out"
    protocols = tuple(_list(out.get("protocols", list(INET_PROTOCOLS)), f"{where}.protocols"))
    for protocol in protocols:
        if protocol not in INET_PROTOCOLS:
            raise ManifestError(
                f"{where}.protocols may hold only {', '.join(INET_PROTOCOLS)}, got {protocol!r}"
            )
    urls = out.get("urls")
    if urls is None:
        return ()
    return tuple(
        _url(url, f"{where}.urls[{i}]", protocols)
        for i, url in enumerate(_list(urls, f"{where}.urls"))
    )


def parse_manifest(encoded: Any) -> Manifest:
    """Decode and check a base64 manifest; raises ManifestError naming the field."""
    compact, raw = _decode(encoded)
    document = _object(raw, "manifest")
    _semver(document.get("version"), "manifest.version")
    created = _time(document.get("createdAt"), "manifest.createdAt")
    expires = _time(document.get("expiresAt"), "manifest.expiresAt")
    if expires <= created:
        raise ManifestError("manifest.expiresAt must come after manifest.createdAt")
    _check_payload(document)
    outbound = _check_comp_manifest(document)
    metadata = _optional_object(document, "metadata", "manifest")
    if metadata and not isinstance(metadata.get("name"), str):
        raise ManifestError("manifest.metadata.name must be a string")
    return Manifest(compact, document, created, expires, outbound)


def signature_properties(
    signature: str | None, algorithm: str | None, cert: str | None
) -> dict[str, str]:
    """The signature's demand properties: all three or none (a provider needs them together)."""
    given = {SIGNATURE: signature, SIGNATURE_ALGORITHM: algorithm, CERT: cert}
    if all(v is None for v in given.values()):
        return {}
    names = {SIGNATURE: "manifest_sig", SIGNATURE_ALGORITHM: "manifest_sig_algorithm"}
    names[CERT] = "manifest_cert"
    missing = [names[k] for k, v in given.items() if v is None]
    if missing:
        raise ManifestError(f"a signed manifest needs {', '.join(missing)} too")
    for key, value in given.items():
        if not isinstance(value, str) or not value.strip():
            raise ManifestError(f"{names[key]} must be a non-empty string")
    if algorithm not in SIGNATURE_ALGORITHMS:
        raise ManifestError(
            f"manifest_sig_algorithm must be one of {', '.join(sorted(SIGNATURE_ALGORITHMS))}, "
            f"got {algorithm!r}"
        )
    try:
        base64.b64decode("".join(str(cert).split()), validate=True)
    except (binascii.Error, ValueError):
        raise ManifestError("manifest_cert must be a base64 certificate (DER or PEM)") from None
    return {k: "".join(str(v).split()) for k, v in given.items()}
