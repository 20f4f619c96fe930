"""``golem-actors image build``: real GVMIs from a directory or tarball, checked with unsquashfs."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from golem_actors.images.build import build_gvmi, sha3_file
from golem_actors.images.gvmi import ContainerConfig, GvmiError, read_gvmi
from golem_actors.images.squashfs import SquashfsError, unsquash

CONFIG = ContainerConfig(
    env=("A=1",), working_dir="/golem/work", volumes=("/golem/output", "/data/deep")
)


def rootfs(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "issue").write_text("built here\n")
    (root / "golem").mkdir()
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_text("#!/bin/sh\n")
    (root / "bin" / "tool").chmod(0o4755)  # setuid: kept in the image, dropped when unpacked
    (root / "bin" / "link").symlink_to("/etc/issue")
    return root


def listing(image: Path) -> str:
    done = subprocess.run(["unsquashfs", "-lln", str(image)], capture_output=True, check=True)
    return done.stdout.decode()


def test_build_from_a_directory(tmp_path: Path) -> None:
    source = rootfs(tmp_path / "src")
    built = build_gvmi(source, tmp_path / "app.gvmi", CONFIG)
    assert built.size == built.path.stat().st_size
    assert built.sha3 == sha3_file(built.path)
    with built.path.open("rb") as f:
        info = read_gvmi(f)
    assert info.config == CONFIG
    assert info.squashfs_bytes % 4096 == 0  # mksquashfs pads: the metadata follows the padding
    files = listing(built.path)
    for path, kind in [
        ("etc/issue", "-rw-r--r-- 0/0"),  # every file root's
        ("golem/work", "drwxr-xr-x 0/0"),  # WorkingDir and volumes added, source untouched
        ("golem/output", "drwxr-xr-x 0/0"),
        ("data/deep", "drwxr-xr-x 0/0"),
        ("bin/link", "lrwxrwxrwx 0/0"),
    ]:
        lines = [line for line in files.splitlines() if f"squashfs-root/{path}" in line]
        assert lines, (path, files)
        assert lines[0].startswith(kind), lines
    assert not (source / "golem" / "work").exists()
    assert "1970-01-01 00:00" in files  # times fixed: ...
    os.utime(source / "etc" / "issue", (5, 5))
    again = build_gvmi(source, tmp_path / "again.gvmi", CONFIG)
    assert again.sha3 == built.sha3  # ... so the same tree is the same image
    other = build_gvmi(source, tmp_path / "other.gvmi", ContainerConfig(env=("A=2",)))
    assert other.sha3 != built.sha3  # the config is part of the image


def test_unsquash_neutralises_what_a_sandbox_must_not_get(tmp_path: Path) -> None:
    built = build_gvmi(rootfs(tmp_path / "src"), tmp_path / "app.gvmi", CONFIG)
    tree = tmp_path / "tree"
    unsquash(built.path, tree)
    assert (tree / "etc" / "issue").read_text() == "built here\n"
    assert (tree / "bin" / "link").readlink() == Path("/etc/issue")  # links kept as they are
    assert (tree / "bin" / "tool").stat().st_mode & 0o7777 == 0o755  # no setuid
    assert all(p.lstat().st_uid == os.getuid() for p in tree.rglob("*"))
    with pytest.raises(SquashfsError, match="unsquashfs failed"):
        unsquash(built.path, tree)  # the destination exists


def test_device_nodes_in_an_image_are_dropped_when_unpacked(tmp_path: Path) -> None:
    source = rootfs(tmp_path / "src")
    image = tmp_path / "dev.sqfs"
    subprocess.run(
        [
            *("mksquashfs", str(source), str(image), "-quiet", "-no-progress", "-noappend"),
            *("-p", "dev d 755 0 0", "-p", "dev/null c 666 0 0 1 3", "-p", "fifo i 644 0 0 f"),
        ],
        check=True,
        capture_output=True,
    )
    assert "dev/null" in listing(image)
    tree = tmp_path / "tree"
    unsquash(image, tree)
    assert (tree / "dev").is_dir()
    assert not (tree / "dev" / "null").exists()
    assert not (tree / "fifo").exists()


def test_build_from_a_tarball(tmp_path: Path) -> None:
    source = rootfs(tmp_path / "src")
    tarball = tmp_path / "root.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(source, arcname=".")
    built = build_gvmi(tarball, tmp_path / "t.gvmi", ContainerConfig(volumes=("/golem/in",)))
    files = listing(built.path)
    assert files.count("squashfs-root/etc/issue") == 1
    assert "squashfs-root/golem/in" in files
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        tar.add(source / "etc" / "issue", arcname="../escape")
    with pytest.raises(ValueError, match="unsafe tarball member"):
        build_gvmi(bad, tmp_path / "bad.gvmi", ContainerConfig())
    assert not (tmp_path / "bad.gvmi").exists()


def test_bad_sources_and_paths_are_refused(tmp_path: Path) -> None:
    source = rootfs(tmp_path / "src")
    (source / "file").write_text("x")
    (source / "ln").symlink_to("/etc")
    out = tmp_path / "x.gvmi"
    cases = [
        (tmp_path / "missing", ContainerConfig(), "no image source"),
        (tmp_path / "empty", ContainerConfig(), "is empty"),
        (source, ContainerConfig(volumes=("/file/x",)), "/file in the image is not a directory"),
        (source, ContainerConfig(volumes=("/ln/x",)), "/ln in the image is a symlink"),
        (source, ContainerConfig(working_dir="/a b"), "cannot hold spaces"),
    ]
    (tmp_path / "empty").mkdir()
    for src, config, message in cases:
        with pytest.raises(GvmiError, match=message):
            build_gvmi(src, out, config)
        assert not out.exists()
    with pytest.raises(GvmiError, match="is not a directory"):
        build_gvmi(source, tmp_path / "no" / "x.gvmi", ContainerConfig())
