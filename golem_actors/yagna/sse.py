"""Server-sent events: the wire format of yagna's batch results stream, parsed from raw lines.

yagna answers ``GET /activity/{id}/exec/{batch}`` with ``Accept: text/event-stream`` by sending
``event: runtime`` / ``data: {json}`` / ``id: n`` blocks, and ``:ping`` comments every 15 s once
the batch's own events have ended (it never closes the stream itself). Only the parsing lives
here, free of I/O, so it is tested on bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["SseMessage", "iter_messages"]


@dataclass(frozen=True)
class SseMessage:
    """One dispatched event: its type (``message`` when none was named), data and id."""

    event: str
    data: str
    id: str | None = None


def iter_messages(lines: Iterable[bytes]) -> Iterator[SseMessage]:
    """The messages of a stream given as lines (without their line ends).

    Follows the HTML spec's rules: ``data`` lines join with newlines, a blank line dispatches,
    a line starting with ``:`` is a comment, one space after the colon is dropped, and a block
    without data dispatches nothing. A block cut off by the end of the stream is dropped, as a
    browser drops it: it may be incomplete.
    """
    event, last_id = "", None
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        if not line:
            if data:
                yield SseMessage(event or "message", "\n".join(data), last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\x00" not in value:
            last_id = value
