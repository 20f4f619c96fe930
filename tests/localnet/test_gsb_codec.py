"""The GSB wire codec, pinned with bytes: frame layout as captured from the real router, frames
reassembled from any TCP chunking, flexbuffers bodies raw and zlib-compressed."""

from __future__ import annotations

import zlib

import pytest

from golem_actors.localnet.gsb.codec import (
    FrameDecoder,
    decode_body,
    encode_body,
    encode_frame,
    err,
    new_packet,
    ok,
)
from golem_actors.localnet.gsb.errors import GsbConnectionError


def test_frame_layout_matches_the_wire() -> None:
    # Ping/Pong bytes as captured from the real router (gsb-native.md, §1).
    assert encode_frame(new_packet("ping")) == b"\x00\x00\x00\x02\x72\x00"
    assert encode_frame(new_packet("pong")) == b"\x00\x00\x00\x02\x7a\x00"
    frame = encode_frame(new_packet("register", service_id="/a"))
    assert frame == b"\x00\x00\x00\x06\x12\x04\x0a\x02/a"


def test_frame_round_trip() -> None:
    pkt = new_packet(
        "call_request", caller="local", address="/x/Y", request_id="42", data=b"\x01\x02"
    )
    pkt.call_request.no_reply = True
    (out,) = FrameDecoder().feed(encode_frame(pkt))
    assert out == pkt
    assert out.call_request.no_reply is True


def test_packet_split_across_one_byte_reads() -> None:
    frame = encode_frame(new_packet("call_reply", request_id="7", code=500, data=b"boom" * 50))
    decoder = FrameDecoder()
    got = [decoder.feed(frame[i : i + 1]) for i in range(len(frame))]
    assert all(g == [] for g in got[:-1])
    assert got[-1][0].call_reply.data == b"boom" * 50


def test_several_packets_in_one_read() -> None:
    frames = [encode_frame(new_packet("register", service_id=f"/s/{i}")) for i in range(3)]
    tail = encode_frame(new_packet("ping"))
    decoder = FrameDecoder()
    out = decoder.feed(b"".join(frames) + tail[:3])
    assert [p.register.service_id for p in out] == ["/s/0", "/s/1", "/s/2"]
    assert [p.WhichOneof("packet") for p in decoder.feed(tail[3:])] == ["ping"]


def test_oversized_frame_is_a_connection_error() -> None:
    with pytest.raises(GsbConnectionError):
        FrameDecoder().feed(b"\xff\xff\xff\xff")


def test_bodies_flexbuffers_raw_and_zlib() -> None:
    value = {"Ok": {"activityId": "a1", "usage": [0.5, 2], "x": None, "flag": True}}
    raw = encode_body(value)
    assert decode_body(raw) == value
    assert decode_body(zlib.compress(raw)) == value
    assert decode_body(encode_body(ok(None))) == {"Ok": None}
    assert decode_body(encode_body(err({"notFound": "x"}))) == {"Err": {"notFound": "x"}}
    assert decode_body(b"") is None
