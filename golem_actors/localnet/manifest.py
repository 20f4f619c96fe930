"""What a localnet provider makes of a demand's computation manifest, before it agrees. Pure.

A real provider (ya-provider's manifest negotiator, ``ya-manifest-utils::decode_manifest``) reads
``golem.srv.comp.payload`` as whitespace-tolerant base64 of a JSON ``AppManifest`` and rejects the
proposal, naming the problem, when it cannot: not base64, not JSON, a required field missing or of
the wrong type, a URL that does not parse, or a signature without its algorithm and certificate.
Which outbound URLs it then allows is the provider's own policy; localnet's providers allow any.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from golem_actors.errors import GolemActorsError

__all__ = ["manifest_problem"]

MANIFEST = "golem.srv.comp.payload"
_SIGNED_WITH = ("golem.srv.comp.payload.sig.algorithm", "golem.srv.comp.payload.cert")
_SEMVER = re.compile(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?")


class _BadError(GolemActorsError):
    """One thing wrong with the manifest (internal: it becomes the rejection's reason)."""


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise _BadError(what)


def _time(value: Any, what: str) -> None:
    try:
        parsed = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    _need(parsed is not None and parsed.tzinfo is not None, f"{what} is not an RFC 3339 time")


def _urls(value: Any, what: str) -> None:
    _need(isinstance(value, list), f"{what} is not a list")
    for url in value:
        parts = urlsplit(url) if isinstance(url, str) else None
        _need(parts is not None and bool(parts.scheme) and bool(parts.netloc), f"bad URL in {what}")


def _check(document: Any) -> None:
    _need(isinstance(document, dict), "not a JSON object")
    version = document.get("version")
    _need(isinstance(version, str) and bool(_SEMVER.fullmatch(version)), "bad version")
    _time(document.get("createdAt"), "createdAt")
    _time(document.get("expiresAt"), "expiresAt")
    payload = document.get("payload")
    _need(isinstance(payload, list), "payload is not a list")
    for item in payload:
        _need(isinstance(item, dict) and isinstance(item.get("hash"), str), "payload without hash")
        _urls(item.get("urls"), "payload urls")
    comp = document.get("compManifest")
    if comp is None:
        return
    _need(isinstance(comp, dict), "compManifest is not an object")
    _need(isinstance(comp.get("version"), str), "compManifest without version")
    out, path = comp, "compManifest"
    for key in ("net", "inet", "out"):
        found, path = out.get(key), f"{path}.{key}"
        out = {} if found is None else found
        _need(isinstance(out, dict), f"{path} is not an object")
    if out.get("urls") is not None:
        _urls(out["urls"], f"{path}.urls")


def manifest_problem(demand: Mapping[str, Any]) -> str | None:
    """Why a provider refuses the demand's manifest (flat properties), or None: none, or fine."""
    encoded = demand.get(MANIFEST)
    if encoded is None:
        return None
    if not isinstance(encoded, str):
        return f"invalid manifest type: {type(encoded).__name__}"
    try:
        raw = base64.b64decode("".join(encoded.split()), validate=True)
        document = json.loads(raw.decode("utf-8"))
        _check(document)
    except (binascii.Error, ValueError) as exc:
        return f"invalid manifest: {type(exc).__name__}: {exc}"
    except _BadError as exc:
        return f"invalid manifest: {exc}"
    if f"{MANIFEST}.sig" in demand and not all(key in demand for key in _SIGNED_WITH):
        return "invalid manifest signature: the algorithm and certificate are missing"
    return None
