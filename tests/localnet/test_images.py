"""The image store: adding, hashing, serving, downloading, verifying and safely extracting."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from golem_actors.localnet.images import ImageError, ImageStore, parse_task_package
from golem_actors.localnet.registry import serve_registry
from golem_actors.localnet.sandbox import Sandbox

HEX = "0" * 56


def copy_binaries(root: Path, binaries: dict[str, str]) -> Path:
    """Copy host programs into ``root/bin`` under the given names, with the libraries they load."""
    for name, binary in binaries.items():
        (root / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, root / "bin" / name)
        ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True)
        for line in ldd.stdout.splitlines():
            lib = next((w for w in line.split() if w.startswith("/")), None)
            if lib:
                (root / lib.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(os.path.realpath(lib), root / lib.lstrip("/"))
    return root


def tiny_rootfs(root: Path) -> Path:
    """A rootfs holding only dash (as /bin/sh), cat and the libraries they load."""
    copy_binaries(root, {"sh": "/usr/bin/dash", "cat": "/usr/bin/cat"})
    (root / "etc").mkdir()
    (root / "etc" / "issue").write_text("tiny image\n")
    (root / "bin" / "shell").symlink_to("sh")  # a link inside the image
    return root


def tarball(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o644
    return info


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store")


@pytest.fixture
def served(store: ImageStore) -> Iterator[str]:
    server, base_url = serve_registry(store)
    yield base_url
    server.shutdown()
    server.server_close()


def test_add_a_directory_deterministically(store: ImageStore, tmp_path: Path) -> None:
    source = tiny_rootfs(tmp_path / "src")
    image = store.add(source, tag="tiny")
    assert len(image.hash) == 56  # sha3-224 hex
    assert image.hash == hashlib.sha3_224(image.path.read_bytes()).hexdigest()
    assert (image.tag, image.source, image.size) == ("tiny", str(source), image.path.stat().st_size)
    os.utime(source / "etc" / "issue", (1, 1))  # times and owners do not change the hash
    again = ImageStore(tmp_path / "other").add(source)
    assert again.hash == image.hash
    assert store.add(source).tag == "tiny"  # re-adding keeps the tag
    (source / "etc" / "issue").write_text("changed\n")
    assert store.add(source).hash != image.hash
    assert [i.hash for i in store.list()] == sorted([image.hash, store.add(source).hash])
    assert store.get(image.hash.upper()) == store.get(image.hash)
    assert store.get(HEX) is None
    assert store.get("not-a-hash") is None
    assert ImageStore(tmp_path / "empty").list() == []


def test_add_a_tarball(store: ImageStore, tmp_path: Path) -> None:
    gz = tmp_path / "img.tar.gz"
    with tarfile.open(gz, "w:gz") as tar:
        tar.add(tiny_rootfs(tmp_path / "src"), arcname=".")
    image = store.add(gz, tag="gz")
    assert image.hash == hashlib.sha3_224(gz.read_bytes()).hexdigest()
    assert image.path.read_bytes() == gz.read_bytes()
    with pytest.raises(ImageError, match="not a rootfs tarball"):
        store.add(tmp_path / "src" / "etc" / "issue")
    with pytest.raises(ImageError, match="no image at"):
        store.add(tmp_path / "missing")


def test_download_verify_extract_and_run(store: ImageStore, served: str, tmp_path: Path) -> None:
    image = store.add(tiny_rootfs(tmp_path / "src"), tag="tiny")
    package = store.task_package(image, served)
    assert package == f"hash:sha3:{image.hash}:{served}/images/{image.hash}.tar"
    provider = ImageStore(tmp_path / "provider")
    rootfs = provider.rootfs(package, timeout=30)
    assert rootfs is not None
    assert (rootfs / "etc" / "issue").read_text() == "tiny image\n"
    assert (rootfs / "bin" / "shell").readlink() == Path("sh")
    stored = provider.get(image.hash)
    assert stored is not None
    assert stored.source == f"{served}/images/{image.hash}.tar"
    assert provider.rootfs(package) == rootfs  # cached: no second download or extraction
    offline = ImageStore(tmp_path / "offline")  # a hash in the store is never downloaded
    offline.add(image.path)
    assert offline.rootfs(f"hash:sha3:{image.hash}:http://127.0.0.1:9/gone.tar") is not None
    sandbox = Sandbox(tmp_path / "activity", rootfs=rootfs)
    result = sandbox.run(["/bin/shell", "-c", "cat /etc/issue; cd / && echo *; echo hi > /tmp/x"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "tiny image"
    assert lines[1].split() == sorted(["bin", "dev", "etc", "golem", "lib", "lib64", "proc", "tmp"])
    assert sandbox.run(["/bin/cat", "/usr/bin/python3"]).exit_code != 0  # the host is not there
    sandbox.destroy()
    assert store.rootfs(None) is None
    assert store.rootfs("") is None


def test_the_server_serves_only_tarballs(store: ImageStore, served: str, tmp_path: Path) -> None:
    image = store.add(tiny_rootfs(tmp_path / "src"))
    response = requests.get(f"{served}/images/{image.hash}.tar", timeout=10)
    assert response.status_code == 200
    assert response.content == image.path.read_bytes()
    assert served.startswith("http://127.0.0.1:")
    for path in (f"/images/{HEX}.tar", "/images/", f"/images/{image.hash}.json", "/../etc"):
        assert requests.get(served + path, timeout=10).status_code == 404
    posted = requests.post(f"{served}/images/{image.hash}.tar", timeout=10)
    assert posted.status_code == 501  # GET only


def test_a_mismatching_hash_is_refused(store: ImageStore, served: str, tmp_path: Path) -> None:
    image = store.add(tiny_rootfs(tmp_path / "src"))
    wrong = "f" * 56
    provider = ImageStore(tmp_path / "provider")
    with pytest.raises(ImageError, match="hash mismatch"):
        provider.rootfs(f"hash:sha3:{wrong}:{served}/images/{image.hash}.tar", timeout=30)
    assert provider.list() == []
    assert list((tmp_path / "provider" / "images").iterdir()) == []  # no partial file left


def test_missing_and_unreachable_images(store: ImageStore, tmp_path: Path) -> None:
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/images/{HEX}.tar"
        with pytest.raises(ImageError, match=r"unreachable.*images add DIR"):
            store.rootfs(f"hash:sha3:{HEX}:{url}", timeout=5)
    with pytest.raises(ImageError, match="not an http"):
        store.rootfs(f"hash:sha3:{HEX}:ftp://example/x.tar")
    for bad in ("docker:alpine", f"hash:sha3:{HEX[:-1]}:http://x", f"hash:md5:{HEX}:http://x"):
        with pytest.raises(ImageError, match="task_package"):
            store.rootfs(bad)
    assert parse_task_package(f"hash://sha3:{HEX.upper()}:http://h:1/x") == (HEX, "http://h:1/x")


@pytest.mark.parametrize(
    "case",
    [
        ("/etc/passwd", tarfile.REGTYPE, "", "absolute"),
        ("../escape", tarfile.REGTYPE, "", "'..'"),
        ("a/../../escape", tarfile.REGTYPE, "", "'..'"),
        ("dev/sda", tarfile.BLKTYPE, "", "device"),
        ("dev/tty", tarfile.CHRTYPE, "", "device"),
        ("a/up", tarfile.SYMTYPE, "../../etc/passwd", "symlink"),
        ("up", tarfile.SYMTYPE, "/../etc", "symlink"),
        ("hard", tarfile.LNKTYPE, "../outside", "hard link"),
        ("hard2", tarfile.LNKTYPE, "/etc/passwd", "hard link"),
    ],
)
def test_unsafe_members_are_refused(
    store: ImageStore, tmp_path: Path, case: tuple[str, bytes, str, str]
) -> None:
    name, kind, link, why = case
    data = b"x" if kind == tarfile.REGTYPE else None
    bad = tarball(tmp_path / "bad.tar", [(member(name, kind, link), data)])
    with pytest.raises(ImageError, match=f"unsafe tarball member.*{why}"):
        store.add(bad)
    assert store.list() == []


def test_extraction_never_writes_through_a_link(
    store: ImageStore, served: str, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "file").write_text("original")
    cases = {
        # Absolute links are fine inside a rootfs (the sandbox resolves them there), but on the
        # host they point out: nothing may be written through them while extracting.
        "through": [
            (member("evil", tarfile.SYMTYPE, str(victim)), None),
            (member("evil/pwned"), b"gotcha"),
        ],
        "replace": [
            (member("evil", tarfile.SYMTYPE, str(victim / "file")), None),
            (member("evil"), b"gotcha"),
        ],
    }
    provider = ImageStore(tmp_path / "provider")
    for label, members in cases.items():
        image = store.add(tarball(tmp_path / f"{label}.tar", members))
        with pytest.raises(ImageError, match="unsafe tarball member 'evil"):
            provider.rootfs(store.task_package(image, served), timeout=30)
    assert sorted(p.name for p in victim.iterdir()) == ["file"]
    assert (victim / "file").read_text() == "original"
    assert [p.name for p in (tmp_path / "provider" / "rootfs").iterdir()] == []
