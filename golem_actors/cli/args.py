"""Argument types shared by the ``golem-actors`` commands: each names what it expected."""

from __future__ import annotations

import argparse

from golem_actors import arguments

__all__ = ["port", "positive_int", "seconds"]


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    return arguments.whole("port", value, ge=0, le=65535, error=argparse.ArgumentTypeError)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    return arguments.number("seconds", value, gt=0, error=argparse.ArgumentTypeError)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    return arguments.whole("count", value, ge=1, error=argparse.ArgumentTypeError)
