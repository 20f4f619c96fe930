"""The ``golem-actors`` console script.

One module per command group (``run``, ``events``, ``localnet``, ``demo``), each with
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
from golem_actors.cli import demo, events, localnet, run
from golem_actors.extras import MissingExtraError
from golem_actors.golem import GolemError
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
    demo.add_parser(commands)
    localnet.add_parser(commands)
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
    except Exception as exc:
        if not isinstance(exc, _user_errors()):
            raise
        print(f"golem-actors: error: {exc}", file=sys.stderr)  # noqa: T201
        return 2


#: localnet's errors meant for the user. They are looked up only in modules already loaded: an
#: error cannot come from a module never imported, and without the [localnet] extra none can be.
_LOCALNET_ERRORS = (
    ("golem_actors.localnet.images", "ImageError"),
    ("golem_actors.localnet.network", "LocalNetError"),
    ("golem_actors.localnet.node", "NodeError"),
)


def _user_errors() -> tuple[type[Exception], ...]:
    """The errors whose message is for the user (exit 2); anything else is a bug: traceback."""
    errors: list[type[Exception]] = [
        ConfigError,
        YagnaError,
        GolemError,
        MissingExtraError,
        ValueError,
    ]
    for module, name in _LOCALNET_ERRORS:
        loaded = sys.modules.get(module)
        if loaded is not None:
            errors.append(getattr(loaded, name))
    return tuple(errors)


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": demo.run,
    "events": events.run,
    "localnet": localnet.run,
    "run": run.run,
}
