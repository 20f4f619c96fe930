"""Answering calls: what a service on the bus writes (a ``Handler``) and how its answer is sent.

A handler gets an ``IncomingCall`` and returns the reply body (usually ``codec.ok(...)``), a
``Streamed`` for a stream, or raises ``ReplyError`` for an application error; anything else it
raises becomes a 500 reply, as a failing yagna service's would. The client runs ``serve`` in its
handler pool, one call per thread, so a long-polling handler holds up nobody else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from golem_actors.localnet.gsb.codec import FULL, PARTIAL, decode_body, encode_body, err, new_packet
from golem_actors.localnet.gsb.connection import Connection
from golem_actors.localnet.gsb.errors import ReplyError

__all__ = ["Handler", "IncomingCall", "Sink", "Streamed", "lookup", "serve"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Streamed:
    """Return from a handler to stream: one PARTIAL per item, then the empty FULL end-of-stream."""

    chunks: Iterable[Any]


@dataclass(frozen=True)
class IncomingCall:
    caller: str
    address: str
    request_id: str
    body: Any
    no_reply: bool


Handler = Callable[[IncomingCall], Any]
#: Takes ``(caller, body)`` of a raw call, on the client's reader thread: it must never block.
Sink = Callable[[str, bytes], None]


def lookup(handlers: Mapping[str, Handler], address: str) -> Handler | None:
    """The handler of the longest registered prefix of ``address``, as the router matches."""
    prefix = address
    while prefix:
        handler = handlers.get(prefix)
        if handler is not None:
            return handler
        prefix = prefix.rpartition("/")[0]
    return None


def serve(conn: Connection, req: Any, handlers: Mapping[str, Handler]) -> None:
    """Answer one ``CallRequest`` that arrived on ``conn``."""
    try:
        body = decode_body(req.data)
    except Exception as e:  # noqa: BLE001 - the caller gets the reason, as from yagna
        _reply(conn, req, 500, f"Bad content: {e}".encode(), FULL)
        return
    call = IncomingCall(req.caller, req.address, req.request_id, body, req.no_reply)
    handler = lookup(handlers, req.address)
    if handler is None:
        _reply(conn, req, 400, b"endpoint address not found", FULL)
        return
    try:
        result = handler(call)
        if isinstance(result, Streamed):
            for chunk in result.chunks:
                _reply(conn, req, 0, encode_body(chunk), PARTIAL)
            _reply(conn, req, 0, b"", FULL)
        else:
            _reply(conn, req, 0, encode_body(result), FULL)
    except ReplyError as e:
        _reply(conn, req, 0, encode_body(err(e.error)), FULL)
    except Exception as e:
        log.exception("GSB handler for %s failed", req.address)
        _reply(conn, req, 500, f"{type(e).__name__}: {e}".encode(), FULL)


def _reply(conn: Connection, req: Any, code: int, data: bytes, reply_type: int) -> None:
    if req.no_reply or conn.lost:
        return
    pkt = new_packet(
        "call_reply", request_id=req.request_id, code=code, reply_type=reply_type, data=data
    )
    try:
        conn.send(pkt)
    except OSError as e:
        log.debug("GSB reply to %s dropped: %s", req.address, e)
