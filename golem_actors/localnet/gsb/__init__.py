"""yagna's service bus (GSB), spoken natively: the way yagna's own services talk to its router.

- ``codec``: the bytes — length-prefixed protobuf packets, flexbuffers bodies. Pure.
- ``errors``: what can go wrong, from a broken frame to a callee's refusal.
- ``connection``: one socket to the router and what lives and dies with it.
- ``serving``: answering calls (``Handler``, ``IncomingCall``, ``Streamed``).
- ``client``: ``GsbClient``, the session — connect, register, call, reconnect, close.

The names below are the package's API; import them from here.
"""

from golem_actors.localnet.gsb.client import GsbClient
from golem_actors.localnet.gsb.codec import (
    FrameDecoder,
    Hello,
    decode_body,
    encode_body,
    encode_frame,
    err,
    new_packet,
    ok,
)
from golem_actors.localnet.gsb.errors import (
    GsbCallError,
    GsbConnectionError,
    GsbError,
    GsbRegisterError,
    GsbTimeoutError,
    ReplyError,
)
from golem_actors.localnet.gsb.serving import Handler, IncomingCall, Sink, Streamed

__all__ = [
    "FrameDecoder",
    "GsbCallError",
    "GsbClient",
    "GsbConnectionError",
    "GsbError",
    "GsbRegisterError",
    "GsbTimeoutError",
    "Handler",
    "Hello",
    "IncomingCall",
    "ReplyError",
    "Sink",
    "Streamed",
    "decode_body",
    "encode_body",
    "encode_frame",
    "err",
    "new_packet",
    "ok",
]
