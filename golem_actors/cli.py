"""The ``golem-actors`` console script.

Sub-commands are added as the runtime grows; each lives in its own module and this file only wires
arguments to them, configures logging (the library never does) and turns errors into exit codes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from golem_actors import __version__, runner
from golem_actors.golem import GolemError
from golem_actors.images.commands import add_image_commands, run_image_command
from golem_actors.localnet import commands as localnet_commands
from golem_actors.localnet.images import ImageError
from golem_actors.localnet.network import LocalNetError
from golem_actors.localnet.node import NodeError
from golem_actors.yagna import ConfigError, YagnaError

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

    demo = commands.add_parser(
        "demo",
        help="start a real yagna, do a round of market and payment calls, stop it",
        description="Starts a private yagna daemon (from golem-node) in a temporary directory, "
        "shows its identity, creates and releases an allocation, publishes and withdraws a "
        "demand, then stops the daemon.",
    )
    demo.add_argument("--data-dir", help="data directory for yagna (default: a temporary one)")
    localnet_commands.add_parser(commands)
    add_image_commands(commands)
    runner.add_parser(commands)
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
    except (
        ConfigError,
        YagnaError,
        LocalNetError,
        NodeError,
        GolemError,
        ImageError,
        ValueError,
    ) as exc:
        print(f"golem-actors: error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `golem-actors localnet status --json | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _demo(args: argparse.Namespace) -> int:
    from golem_actors.demo import run_demo  # noqa: PLC0415 - keep start-up light

    return run_demo(args.data_dir)


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": _demo,
    "image": run_image_command,
    "localnet": localnet_commands.run,
    "run": runner.run,
}


if __name__ == "__main__":
    sys.exit(main())
