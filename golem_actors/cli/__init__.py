"""The ``golem-actors`` console script.

One module per command group (``run``, ``events``, ``localnet``, ``image``, ``demo``), each with
``add_parser`` and ``run(args) -> int``; argument types they share are in ``args``. This module
only wires them, configures logging (the library never does) and turns errors into exit codes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from golem_actors import __version__
from golem_actors.cli import demo, events, image, localnet, run
from golem_actors.errors import GolemActorsError

__all__ = ["main"]

log = logging.getLogger("golem_actors")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="golem-actors",
        description="A Golem Network requestor runtime built on actors.",
    )
    parser.add_argument("--version", action="version", version=f"golem-actors {__version__}")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level on stderr (default: WARNING)",
    )
    parser.add_argument(
        "--debug-api",
        action="store_true",
        help="log every yagna call (method, path, status, duration); app keys are never logged",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.add_parser(commands)
    localnet.add_parser(commands)
    image.add_parser(commands)
    run.add_parser(commands)
    events.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    if args.debug_api:
        logging.getLogger("golem_actors.yagna.api").setLevel(logging.DEBUG)
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `golem-actors localnet status --json | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (GolemActorsError, ValueError) as exc:  # a message for the user; else a traceback
        print(f"golem-actors: error: {exc}", file=sys.stderr)  # noqa: T201
        return 2


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": demo.run,
    "image": image.run,
    "events": events.run,
    "localnet": localnet.run,
    "run": run.run,
}
