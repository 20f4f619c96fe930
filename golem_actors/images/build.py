"""Build a GVMI from a directory or a rootfs tarball, without docker: what gvmkit-build makes.

gvmkit-build exports a docker image's filesystem, runs ``mksquashfs`` on it and appends the
image's container config. Here the filesystem is a directory (or a tarball, extracted safely
first) and the config comes from the command line. The directories the config names
(``WorkingDir``, ``Volumes``) are added to the image when the tree lacks them, as Docker's
``WORKDIR`` and ``VOLUME`` would, without touching the source; the VM needs its working
directory to exist and mounts each volume on its path.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from golem_actors.images.gvmi import ContainerConfig, GvmiError, encode_metadata, read_gvmi
from golem_actors.images.squashfs import find_tool, make_squashfs
from golem_actors.images.tarballs import extract_tarball

__all__ = ["BuiltImage", "build_gvmi", "sha3_file"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class BuiltImage:
    path: Path
    sha3: str  # sha3-224 of the whole file: what task packages and registries name it by
    size: int
    config: ContainerConfig


def build_gvmi(source: Path, output: Path, config: ContainerConfig) -> BuiltImage:
    """Write the GVMI of ``source`` (a directory or a rootfs tarball) to ``output``."""
    source, output = Path(source), Path(output)
    find_tool("mksquashfs")  # before any work: the error names the package to install
    if not output.parent.is_dir():
        raise GvmiError(f"cannot write {output}: {output.parent} is not a directory")
    if output.is_dir():
        raise GvmiError(f"cannot write {output}: it is a directory")
    part = output.with_name(f".{output.name}.part")
    try:
        if source.is_dir():
            _squash(source, part, config)
        elif source.is_file():
            with tempfile.TemporaryDirectory(dir=output.parent, prefix=".gvmi-build-") as tmp:
                tree = Path(tmp) / "rootfs"
                extract_tarball(source, tree)
                _squash(tree, part, config)
        else:
            raise GvmiError(f"no image source at {source}: give a directory or a rootfs tarball")
        with part.open("ab") as image:
            image.write(encode_metadata(config))
        with part.open("rb") as image:
            read_gvmi(image)  # what a provider will check, checked before anyone downloads it
        part.replace(output)
    finally:
        part.unlink(missing_ok=True)
    return BuiltImage(output, sha3_file(output), output.stat().st_size, config)


def sha3_file(path: Path) -> str:
    digest = hashlib.sha3_224()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _squash(tree: Path, out: Path, config: ContainerConfig) -> None:
    if not any(tree.iterdir()):
        raise GvmiError(f"{tree} is empty: an image needs a root filesystem")
    wanted = [*config.volumes, *([config.working_dir] if config.working_dir else [])]
    missing: list[str] = []
    for path in wanted:
        for directory in _missing_dirs(tree, path):
            if directory not in missing:
                missing.append(directory)
    make_squashfs(tree, out, pseudo_dirs=missing)


def _missing_dirs(tree: Path, path: str) -> list[str]:
    """The directories of ``path`` (from the top) that ``tree`` lacks; refuse what is in the way.

    A volume or working directory must be a directory: not a file, and not reached through a
    symlink (which would resolve in the image, not here, and could name anything).
    """
    parts = PurePosixPath(path).parts[1:]
    missing: list[str] = []
    for depth in range(1, len(parts) + 1):
        relative = "/".join(parts[:depth])
        if any(c.isspace() or c in "\"'\\" for c in relative):
            raise GvmiError(f"{path!r}: volume and working directory paths cannot hold spaces")
        here = tree / relative
        if missing or not (here.exists() or here.is_symlink()):
            missing.append(relative)
        elif here.is_symlink() or not here.is_dir():
            kind = "a symlink" if here.is_symlink() else "not a directory"
            raise GvmiError(f"{path!r} cannot be a directory: /{relative} in the image is {kind}")
    return missing
