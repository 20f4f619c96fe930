"""GVMIs in localnet's store: recognised by content, checked, unpacked, run as the VM runs them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from golem_actors.images.build import build_gvmi, sha3_file
from golem_actors.images.gvmi import ContainerConfig
from golem_actors.localnet.images import ImageError, ImageStore, image_config, normal_tag
from golem_actors.localnet.sandbox import Sandbox
from tests.localnet.test_exeunit import Files
from tests.localnet.test_images import tiny_rootfs

CONFIG = ContainerConfig(
    env=("GREETING=hello from the image", "PATH=/bin"),
    working_dir="/golem/work",
    volumes=("/golem/output", "/data"),
)


def sha3_bytes(data: bytes) -> str:
    return hashlib.sha3_224(data).hexdigest()


def app_tree(root: Path) -> Path:
    """The tiny rootfs with a file baked into ``/golem/work`` (not a volume of the image)."""
    tiny_rootfs(root)
    (root / "golem" / "work").mkdir(parents=True)
    (root / "golem" / "work" / "baked.txt").write_text("baked into the image\n")
    return root


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return build_gvmi(app_tree(tmp_path / "root"), tmp_path / "app.gvmi", CONFIG).path


def test_a_gvmi_is_stored_by_content_with_its_tag(tmp_path: Path, app: Path) -> None:
    store = ImageStore(tmp_path / "store")
    disguised = app.rename(tmp_path / "app.tar")  # the name says tar, the content says GVMI
    image = store.add(disguised, tag="app:1.0")
    assert (image.kind, image.hash, image.tag) == ("gvmi", sha3_file(disguised), "app:1.0")
    assert image.path.name == f"{image.hash}.gvmi"
    assert store.task_package(image, "http://h:1/").endswith(f"/images/{image.hash}.gvmi")
    assert store.find_tag("app:1.0") == image
    assert store.find_tag("app") is None  # app means app:latest
    assert store.find_tag("app:2.0") is None
    tarball = tmp_path / "named.gvmi"  # and a tarball named .gvmi is a tarball
    image_dir = tiny_rootfs(tmp_path / "tiny")
    store.add(image_dir, tag="tiny")
    packed = store.find_tag("tiny:latest")
    assert packed is not None
    assert packed.kind == "tar"
    tarball.write_bytes(packed.path.read_bytes())
    assert store.add(tarball).kind == "tar"
    again = store.add(image_dir, tag="app:1.0")  # a tag names one image: it moves
    assert store.find_tag("app:1.0") == again
    assert store.get(image.hash) is not None
    assert store.get(image.hash).tag is None  # type: ignore[union-attr]
    assert normal_tag("golem/alpine") == "golem/alpine:latest"
    assert normal_tag("localhost:5000/x") == "localhost:5000/x:latest"
    for bad in ("", "has space:1", "-x", "a:b:c"):
        with pytest.raises(ImageError, match="name:version"):
            store.add(app.parent / "app.tar", tag=bad)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d[:-12] + bytes([d[-12] ^ 0x20]) + d[-11:], "CRC mismatch"),
        (lambda d: d[:100] + d[4196:], "truncated squashfs"),
        (lambda d: d[:-10], "no GVMI metadata"),
    ],
)
def test_a_corrupt_gvmi_is_refused_when_added(tmp_path: Path, app: Path, damage, message) -> None:
    store = ImageStore(tmp_path / "store")
    bad = tmp_path / "bad.gvmi"
    bad.write_bytes(damage(app.read_bytes()))
    with pytest.raises(ImageError, match=f"bad.gvmi is a corrupt GVMI: .*{message}"):
        store.add(bad)
    assert store.list() == []
    assert [p.name for p in (tmp_path / "store" / "images").iterdir()] == []


def test_download_unpack_and_run_as_the_vm_would(
    tmp_path: Path, app: Path, registry: tuple[ImageStore, str]
) -> None:
    store, url = registry
    image = store.add(app, tag="app:1.0")
    provider = ImageStore(tmp_path / "provider")
    package = f"hash:sha3:{image.hash}:{url}/download/{image.hash}"
    rootfs = provider.rootfs(package, timeout=30)
    assert rootfs is not None
    assert provider.get(image.hash).kind == "gvmi"  # type: ignore[union-attr]
    config = image_config(rootfs)
    assert config == CONFIG
    assert image_config(tiny_rootfs(tmp_path / "plain")) is None  # a tarball's has none
    assert (rootfs / "data").is_dir()  # the volumes' mount points, made at unpack
    assert provider.rootfs(package) == rootfs  # cached by hash
    box = Sandbox(tmp_path / "act", rootfs=rootfs, env=config.env_map, volumes=config.volumes)
    try:
        script = 'pwd; echo "$GREETING"; cat baked.txt; echo o > /golem/output/o; echo d > /data/d'
        done = box.run(["/bin/sh", "-c", script], cwd=config.working_dir, timeout=30)
        assert done.exit_code == 0, done.stderr
        assert done.stdout.decode().splitlines() == [
            "/golem/work",
            "hello from the image",
            "baked into the image",  # the image's own /golem shows where no volume covers it
        ]
        assert box.host_path("/golem/output/o").read_text() == "o\n"
        assert box.host_path("/data/d").read_text() == "d\n"
        not_volume = box.run(["/bin/sh", "-c", "echo x > /golem/work/new"], timeout=30)
        assert not_volume.exit_code != 0  # the image is read-only outside its volumes
        missing = box.run(["/bin/sh", "-c", "cd /golem/input"], timeout=30)
        assert missing.exit_code != 0  # only the image's own volumes exist
        with pytest.raises(ValueError, match="outside the volumes"):
            box.host_path("/golem/input/x")
    finally:
        box.destroy()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d[:-12] + bytes([d[-12] ^ 0x20]) + d[-11:], "CRC mismatch"),
        (lambda d: d[:100] + d[4196:], "truncated squashfs: its superblock says"),
        (lambda d: d[:96] + bytes(4000) + d[4096:], "unsquashfs failed"),  # same size, garbage
    ],
)
def test_a_corrupt_gvmi_fails_to_resolve_with_a_clear_message(
    tmp_path: Path, app: Path, blob_server: Files, damage, message
) -> None:
    provider = ImageStore(tmp_path / "provider")
    data = damage(app.read_bytes())
    blob_server.files["/bad.gvmi"] = data
    package = f"hash:sha3:{sha3_bytes(data)}:{blob_server.url('/bad.gvmi')}"
    with pytest.raises(ImageError, match=f"corrupt GVMI: .*{message}"):
        provider.rootfs(package, timeout=30)
    assert provider.list() == []
    assert [p.name for p in (tmp_path / "provider" / "rootfs").glob("*")] == []


def test_a_volume_the_image_blocks_is_refused_at_unpack(tmp_path: Path) -> None:
    root = tiny_rootfs(tmp_path / "root")
    built = build_gvmi(root, tmp_path / "ok.gvmi", ContainerConfig(volumes=("/etc/x",)))
    data = built.path.read_bytes()
    provider = ImageStore(tmp_path / "provider")
    provider.add(built.path)
    assert provider.rootfs(f"hash:sha3:{sha3_bytes(data)}:http://127.0.0.1:9/x") is not None
    link = tiny_rootfs(tmp_path / "link")
    (link / "data").symlink_to("/etc")  # built elsewhere with a volume below a link
    raw = build_gvmi(link, tmp_path / "l.gvmi", ContainerConfig()).path.read_bytes()
    from golem_actors.images.gvmi import encode_metadata  # noqa: PLC0415

    squash = raw[: -len(encode_metadata(ContainerConfig()))]
    evil = tmp_path / "evil.gvmi"
    evil.write_bytes(squash + encode_metadata(ContainerConfig(volumes=("/data/x",))))
    provider.add(evil)
    with pytest.raises(ImageError, match="volume /data/x: data in the image is in the way"):
        provider.rootfs(f"hash:sha3:{sha3_file(evil)}:http://127.0.0.1:9/x")
    assert not Path("/etc/x").exists()
