"""The GSB wire format: length-prefixed protobuf ``Packet`` frames carrying flexbuffers bodies.

Pure code (bytes in, packets or values out), so the layout is pinned by tests with captured
bytes and the client never has to be running to check it. The protocol is described in
``/work/shared/notes/gsb-native.md``: each frame is a u32 big-endian length and then a protobuf
``GSB_API.Packet`` (a oneof of Hello, Register, Call and so on); call bodies are serde values
serialized with flexbuffers, zlib-compressed when yagna runs under hybrid net.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from flatbuffers import flexbuffers
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from golem_actors.localnet.gsb.errors import GsbConnectionError

__all__ = [
    "FULL",
    "MAX_FRAME",
    "PARTIAL",
    "FrameDecoder",
    "Hello",
    "decode_body",
    "encode_body",
    "encode_frame",
    "err",
    "new_packet",
    "ok",
]

# Wire schema, field numbers as in ya-sb-proto's gsb_api.proto: "field=number:type", s string,
# b bytes, i int32 (enums are the same varint), ? bool, else a message. Packet's fields form its
# oneof; variants 8-13 (pub/sub) are left out, so they parse as unknown and are ignored.
_SCHEMA = {
    "Hello": "name=1:s version=2:s instance_id=3:b",
    "RegisterRequest": "service_id=1:s",
    "RegisterReply": "code=1:i message=2:s",
    "UnregisterRequest": "service_id=1:s",
    "UnregisterReply": "code=1:i",
    "CallRequest": "caller=1:s address=2:s request_id=3:s data=4:b no_reply=5:?",
    "CallReply": "request_id=1:s code=2:i reply_type=3:i data=4:b",
    "Ping": "",
    "Pong": "",
    "Packet": "hello=1:Hello register=2:RegisterRequest register_reply=3:RegisterReply"
    " unregister=4:UnregisterRequest unregister_reply=5:UnregisterReply"
    " call_request=6:CallRequest call_reply=7:CallReply ping=14:Ping pong=15:Pong",
}


def _build_packet_class() -> Any:
    """No protoc here: describe ``GSB_API.Packet`` at import time, in a private pool."""
    fd = descriptor_pb2.FieldDescriptorProto
    types = {"s": fd.TYPE_STRING, "b": fd.TYPE_BYTES, "i": fd.TYPE_INT32, "?": fd.TYPE_BOOL}
    fdp = descriptor_pb2.FileDescriptorProto(name="gsb_api.proto", package="GSB_API")
    fdp.syntax = "proto3"
    for name, spec in _SCHEMA.items():
        msg = fdp.message_type.add(name=name)
        for item in spec.split():
            fname, number, ftype = item.replace(":", "=").split("=")
            f = msg.field.add(name=fname, number=int(number), label=fd.LABEL_OPTIONAL)
            if ftype in types:
                f.type = types[ftype]
            else:
                f.type, f.type_name, f.oneof_index = fd.TYPE_MESSAGE, f".GSB_API.{ftype}", 0
        if name == "Packet":
            msg.oneof_decl.add(name="packet")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("GSB_API.Packet"))


_Packet: Any = _build_packet_class()
FULL, PARTIAL = 0, 1  # CallReply.reply_type: a whole reply (or end of stream), a stream chunk
MAX_FRAME = 64 * 1024 * 1024
_LEN = struct.Struct(">I")


@dataclass(frozen=True)
class Hello:
    """The router's greeting; ``instance_id`` tells one router run from the next."""

    name: str
    version: str
    instance_id: bytes


def new_packet(kind: str, **fields: Any) -> Any:
    """A ``Packet`` with its oneof set to ``kind`` (e.g. ``"ping"``, ``"call_request"``)."""
    pkt = _Packet()
    sub = getattr(pkt, kind)
    sub.SetInParent()  # empty messages (Ping/Pong) must still select the variant
    for key, value in fields.items():
        setattr(sub, key, value)
    return pkt


def encode_frame(packet: Any) -> bytes:
    data: bytes = packet.SerializeToString()
    return _LEN.pack(len(data)) + data


class FrameDecoder:
    """Reassembles frames from arbitrary TCP chunks (partial frames, several per read)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[Any]:
        self._buf += chunk
        out = []
        while len(self._buf) >= _LEN.size:
            (size,) = _LEN.unpack_from(self._buf)
            if size > MAX_FRAME:
                raise GsbConnectionError(f"frame of {size} bytes exceeds {MAX_FRAME}")
            if len(self._buf) < _LEN.size + size:
                break
            try:
                out.append(_Packet.FromString(bytes(self._buf[_LEN.size : _LEN.size + size])))
            except DecodeError as e:
                raise GsbConnectionError(f"undecodable GSB packet: {e}") from e
            del self._buf[: _LEN.size + size]
        return out


def encode_body(value: Any) -> bytes:
    return bytes(flexbuffers.Dumps(value))


def decode_body(data: bytes) -> Any:
    """Bodies are zlib-compressed under hybrid net (yagna's global flag), raw otherwise."""
    if not data:
        return None
    with contextlib.suppress(zlib.error):
        data = zlib.decompress(data)
    return flexbuffers.Loads(data)


def ok(value: Any) -> dict[str, Any]:
    """Rust ``Result::Ok`` as serde/flexbuffers shapes it."""
    return {"Ok": value}


def err(error: Any) -> dict[str, Any]:
    return {"Err": error}
