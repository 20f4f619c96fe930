"""The GVMI format, pure: metadata written and read back, and every kind of damage named."""

from __future__ import annotations

import io
import json
import struct
import zlib

import pytest

from golem_actors.images.gvmi import (
    ContainerConfig,
    GvmiError,
    check_volume,
    encode_metadata,
    is_squashfs,
    read_gvmi,
)

CONFIG = ContainerConfig(
    env=("PATH=/usr/bin:/bin", "GREETING=a=b c"),
    entrypoint=("/bin/app",),
    cmd=("--serve", "8080"),
    working_dir="/golem/work",
    volumes=("/golem/output", "/data"),
)


def squashfs(bytes_used: int, total: int) -> bytes:
    """A squashfs 4.0 superblock claiming ``bytes_used``, padded to ``total`` bytes."""
    head = bytearray(96)
    head[:4] = b"hsqs"
    struct.pack_into("<HH", head, 28, 4, 0)
    struct.pack_into("<Q", head, 40, bytes_used)
    return bytes(head) + bytes(total - 96)


def gvmi(config: ContainerConfig = CONFIG, used: int = 4000, total: int = 4096) -> bytes:
    return squashfs(used, total) + encode_metadata(config)


def test_the_metadata_layout_is_gvmkits() -> None:
    tail = encode_metadata(CONFIG)
    body = tail[4:-8]
    assert tail[-8:] == f"{len(body):08d}".encode()  # 8 ASCII digits, zero-padded
    assert int.from_bytes(tail[:4], "little") == zlib.crc32(body)  # CRC-32 first, LE
    assert zlib.crc32(b"123456789") == 0xCBF43926  # CRC-32/ISO-HDLC, gvmkit's algorithm
    fields = json.loads(body)
    assert fields == {
        "Env": ["PATH=/usr/bin:/bin", "GREETING=a=b c"],
        "Entrypoint": ["/bin/app"],
        "Cmd": ["--serve", "8080"],
        "WorkingDir": "/golem/work",
        "Volumes": {"/golem/output": {}, "/data": {}},  # Docker's map of path -> {}
    }


def test_round_trip() -> None:
    data = gvmi()
    info = read_gvmi(io.BytesIO(data))
    assert info.config == ContainerConfig(
        env=CONFIG.env,
        entrypoint=CONFIG.entrypoint,
        cmd=CONFIG.cmd,
        working_dir=CONFIG.working_dir,
        volumes=("/data", "/golem/output"),  # read back sorted
    )
    assert (info.squashfs_bytes, info.size) == (4096, len(data))
    assert info.config.env_map == {"PATH": "/usr/bin:/bin", "GREETING": "a=b c"}
    assert read_gvmi(io.BytesIO(squashfs(96, 96) + encode_metadata(ContainerConfig()))).config == (
        ContainerConfig()
    )


def test_a_docker_config_keeps_its_other_fields_and_tolerates_nulls() -> None:
    docker = {
        "Hostname": "",
        "Env": ["PATH=/bin"],
        "Cmd": None,
        "Entrypoint": None,
        "WorkingDir": "",
        "Volumes": None,
        "Labels": {"a": "b"},
        "User": "",
    }
    config = ContainerConfig.from_json(docker)
    assert (config.cmd, config.entrypoint, config.working_dir, config.volumes) == ((), (), "", ())
    again = ContainerConfig.from_json(config.to_json())
    assert again.to_json()["Labels"] == {"a": "b"}
    assert again.to_json()["Hostname"] == ""
    assert again == config
    raw = squashfs(100, 4096)
    body = json.dumps(docker).encode()  # written by another tool: spaces, key order, nulls
    raw += zlib.crc32(body).to_bytes(4, "little") + body + f"{len(body):08d}".encode()
    assert read_gvmi(io.BytesIO(raw)).config.env == ("PATH=/bin",)
    assert ContainerConfig(env=("NOEQUALS", "=x", "K=")).env_map == {"K": ""}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d[:-20] + bytes([d[-20] ^ 1]) + d[-19:], "CRC mismatch"),  # a JSON byte
        (lambda d: d[:4096] + b"\0\0\0\0" + d[4100:], "CRC mismatch"),  # the CRC itself
        (lambda d: d[:1000] + d[2000:], "truncated squashfs: its superblock says 4000 bytes"),
        (lambda d: d[:-3], "no GVMI metadata"),  # cut at the end
        (lambda d: d[:-8] + b"99999999", "does not fit"),
        (lambda d: b"xxxx" + d[4:], "not a squashfs image"),
        (lambda _: b"short", "too few"),
        (lambda d: d[:28] + b"\x03\x00" + d[30:], "squashfs 3.0 is not supported"),
    ],
)
def test_damage_is_named(damage, message) -> None:
    with pytest.raises(GvmiError, match=message):
        read_gvmi(io.BytesIO(damage(gvmi())))


def test_a_config_that_is_not_one_is_refused() -> None:
    for body, message in [
        (b"[1]", "not a JSON object"),
        (b"{not json", "bad GVMI config"),
        (b'{"Env": "A=1"}', "Env is not a list of strings"),
        (b'{"Volumes": ["/x"]}', "Volumes is not an object"),
        (b'{"WorkingDir": 3}', "WorkingDir is not a string"),
        (b'{"WorkingDir": "rel"}', "WorkingDir must be an absolute path"),
        (b'{"Volumes": {"/proc/x": {}}}', "/proc is the system's own"),
    ]:
        raw = squashfs(96, 96) + zlib.crc32(body).to_bytes(4, "little") + body
        raw += f"{len(body):08d}".encode()
        with pytest.raises(GvmiError, match=message):
            read_gvmi(io.BytesIO(raw))


def test_volume_rules() -> None:
    for good in ("/golem/input", "/data", "/a/b/c", "/var/x"):
        check_volume(good)
    for bad in ("relative", "/", "/a/../b", "/a/", "/a//b", "/dev", "/sys/fs", "/proc"):
        with pytest.raises(GvmiError):
            check_volume(bad)
    with pytest.raises(GvmiError, match="absolute path"):
        ContainerConfig(working_dir="golem")


def test_magic() -> None:
    assert is_squashfs(b"hsqs....")
    assert not is_squashfs(b"\x1f\x8b\x08\x00")  # gzip: a .tar.gz
    assert not is_squashfs(b"hs")
