"""The ``gftp`` console script: ``gftp server`` for stock requestors such as yapapi.

A program of its own (not a ``golem-actors`` command) because stock clients run it by that
name; see ``golem_actors.storage.gftp_rpc``. It needs ``YAGNA_APPKEY`` (and ``YAGNA_API_URL``
unless the daemon is at the default) as the requestor has them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from golem_actors.storage.gftp import GftpStorage
from golem_actors.storage.gftp_rpc import PROTOCOL_VERSION, serve
from golem_actors.yagna import ApiConfig

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gftp",
        description="GFTP for stock Golem requestors: files served and received through "
        "yagna's GSB API (golem-actors' implementation of the gftp tool's JSON-RPC server).",
    )
    parser.add_argument("--version", action="version", version=f"gftp {PROTOCOL_VERSION}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("server", help="answer JSON-RPC requests, one per line on stdin")
    parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="gftp %(levelname)s %(name)s: %(message)s"
    )

    def open_storage() -> GftpStorage:
        return GftpStorage(ApiConfig.from_env())

    return serve(sys.stdin, sys.stdout, open_storage)
