"""``golem-actors image build|inspect``: make a GVMI without docker, or check one.

The work is ``golem_actors.images``'; this module only maps arguments onto it. squashfs-tools
failures (``SquashfsError``) and unreadable files are reported here as the other user errors
are (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from golem_actors.images.build import build_gvmi, sha3_file
from golem_actors.images.gvmi import ContainerConfig, GvmiError, check_volume, read_gvmi
from golem_actors.images.squashfs import SquashfsError
from golem_actors.images.tarballs import TarballError

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Add ``image`` and its sub-commands to the console script's sub-parsers."""
    image = commands.add_parser("image", help="build or inspect a Golem VM image (GVMI)")
    sub = image.add_subparsers(dest="image_command", required=True, metavar="COMMAND")
    build = sub.add_parser(
        "build",
        help="build a GVMI from a directory or rootfs tarball (no docker needed)",
        description="Packs SOURCE (a root filesystem directory, or a .tar/.tar.gz of one) into a "
        "squashfs image with mksquashfs (Debian's squashfs-tools) and appends the container "
        "config, as gvmkit-build does: the result runs on real Golem providers and on localnet.",
    )
    build.add_argument("source", type=Path, metavar="DIR|TARBALL", help="the root filesystem")
    build.add_argument("-o", "--output", type=Path, required=True, metavar="NAME.gvmi")
    build.add_argument(
        "--env", type=_env_entry, action="append", default=[], metavar="K=V", help="repeatable"
    )
    build.add_argument("--workdir", type=_absolute, default=None, metavar="DIR")
    build.add_argument(
        "--volume",
        type=_volume,
        action="append",
        default=[],
        metavar="PATH",
        help="a writable volume the requestor can transfer to/from (repeatable)",
    )
    build.add_argument("--entrypoint", help="the image's program (informational for Golem)")
    build.add_argument("--cmd", action="append", default=[], metavar="ARG", help="repeatable")
    inspect = sub.add_parser("inspect", help="check a GVMI and print its hash and config")
    inspect.add_argument("image", type=Path, metavar="NAME.gvmi")


def run(args: argparse.Namespace) -> int:
    try:
        if args.image_command == "build":
            return _build(args)
        return _inspect(args.image)
    except (GvmiError, SquashfsError, TarballError, OSError) as exc:
        print(f"golem-actors: error: {exc}", file=sys.stderr)  # noqa: T201
        return 2


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201


def _build(args: argparse.Namespace) -> int:
    config = ContainerConfig(
        env=tuple(args.env),
        entrypoint=(args.entrypoint,) if args.entrypoint else (),
        cmd=tuple(args.cmd),
        working_dir=args.workdir or "",
        volumes=tuple(args.volume),
    )
    built = build_gvmi(args.source, args.output, config)
    _say(f"built {built.path}: {built.size} bytes, sha3 {built.sha3}")
    _say(f"config: {json.dumps(built.config.to_json())}")
    _say(f"next: golem-actors localnet images add {built.path} --tag NAME:VERSION")
    return 0


def _inspect(path: Path) -> int:
    with path.open("rb") as image:
        info = read_gvmi(image)
    _say(f"{path}: {info.size} bytes (squashfs {info.squashfs_bytes}), sha3 {sha3_file(path)}")
    _say(json.dumps(info.config.to_json(), indent=2))
    return 0


def _env_entry(text: str) -> str:
    key, sep, _ = text.partition("=")
    if not sep or not key or any(c.isspace() for c in key):
        raise argparse.ArgumentTypeError(f"--env wants KEY=VALUE, got {text!r}")
    return text


def _absolute(text: str) -> str:
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError(f"--workdir must be an absolute path, got {text!r}")
    return text


def _volume(text: str) -> str:
    try:
        check_volume(text)
    except GvmiError as exc:
        raise argparse.ArgumentTypeError(f"--volume: {exc}") from None
    return text
