"""ExeScript: the command batch ``POST /activity/{id}/exec`` runs, and its results.

The builder emits the normalized JSON yagna's own model produces (snake_case ``entry_point``,
capture formats ``str``/``bin``, explicit nulls), so what we send is exactly what the exe-unit
receives. yagna answers a malformed script with a bare 400; validating here instead gives a
``ValueError`` naming the command and the field before anything reaches the network.

    script = Script().deploy().start().run("/bin/echo", "hi", label="echo")
    batch_id = yagna.activity.exec(activity_id, script.to_json())
    batch = BatchResult.parse(script, yagna.activity.batch_results(activity_id, batch_id))
    print(batch["echo"].stdout)
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Self
from urllib.parse import urlsplit

from golem_actors import arguments
from golem_actors.errors import GolemActorsError
from golem_actors.yagna.models import CommandResult

__all__ = [
    "BatchResult",
    "Capture",
    "Command",
    "CommandFailedError",
    "CommandOutcome",
    "DeployNet",
    "Script",
]

#: yagna accepts the long names as aliases and forwards the short ones; we always send short.
_FORMATS = {"str": "str", "string": "str", "bin": "bin", "binary": "bin"}
_SCHEMES = ("container", "http", "https", "gftp")
_HASHED = re.compile(r"hash:[a-z0-9]+:(?:0x)?[0-9a-fA-F]+:(.+)", re.DOTALL)  # the exe-unit's form
_FILESET_KEYS = frozenset({"desc", "includes", "excludes"})
_CAPTURE_KEYS = ("head", "tail", "headTail", "limit")
Output = str | bytes | None


def _int(where: str, value: int | None, minimum: int = 1) -> None:
    if value is not None:
        arguments.whole(where, value, ge=minimum)


def _strings(where: str, values: Iterable[object]) -> list[str]:
    out = list(values)
    for i, value in enumerate(out):
        if not isinstance(value, str) or "\x00" in value:
            raise ValueError(f"{where}[{i}] must be a string without NUL, got {value!r}")
    return out  # type: ignore[return-value]  # checked above


def _str_map(where: str, values: Mapping[str, str] | None) -> dict[str, str]:
    out = dict(values or {})
    for key, value in out.items():
        if not isinstance(key, str) or not key or "=" in key or not isinstance(value, str):
            raise ValueError(f"{where}: entry {key!r}: {value!r} must map a name to a string")
    return out


@dataclass(frozen=True)
class Capture:
    """How a run's stdout or stderr is captured: whole at the end, or streamed.

    ``format`` is ``str`` or ``bin`` (yagna also takes ``string``/``binary``, and rejects anything
    else, e.g. ``text``, with a bare 400). At the end, ``head``/``tail``/``head_tail`` keep only
    that many bytes of the output, so a chatty command cannot flood the results; ``limit`` caps a
    stream.
    """

    format: str = "str"
    _: KW_ONLY
    stream: bool = False
    head: int | None = None
    tail: int | None = None
    head_tail: int | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.format not in _FORMATS:
            raise ValueError(f"capture format must be str or bin, got {self.format!r}")
        object.__setattr__(self, "format", _FORMATS[self.format])
        for name, value in zip(_CAPTURE_KEYS, self._values(), strict=True):
            _int(f"capture {name}", value)
        parts = sum(v is not None for v in (self.head, self.tail, self.head_tail))
        if parts > 1 or (parts and self.stream) or (self.limit is not None and not self.stream):
            raise ValueError("capture takes one of head/tail/headTail at end, or a stream limit")

    def _values(self) -> tuple[int | None, ...]:
        return (self.head, self.tail, self.head_tail, self.limit)

    def to_json(self) -> dict[str, Any]:
        body = {k: v for k, v in zip(_CAPTURE_KEYS, self._values(), strict=True) if v is not None}
        return {"stream" if self.stream else "atEnd": {**body, "format": self.format}}


@dataclass(frozen=True)
class DeployNet:
    """A VPN the container joins at deploy: the network (``NetApi``), this node's ip in it, and
    the other members (ip -> node id)."""

    id: str
    ip: str
    node_ip: str
    mask: str | None = None
    gateway: str | None = None
    nodes: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        nodes = _str_map("deploy net nodes", self.nodes)
        values = (self.id, self.ip, self.mask, self.gateway, self.node_ip, nodes)
        return dict(zip(("id", "ip", "mask", "gateway", "nodeIp", "nodes"), values, strict=True))


@dataclass(frozen=True)
class Command:
    """One command of a script, at its ``index`` in the batch (results carry that index)."""

    index: int
    name: str
    body: Mapping[str, Any]
    label: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {self.name: copy.deepcopy(dict(self.body))}

    def describe(self) -> str:
        if self.name == "run":
            return " ".join([self.name, self.body["entry_point"], *self.body["args"]])[:200]
        if self.name == "transfer":
            return f"transfer {self.body['from']} -> {self.body['to']}"
        return self.name


def _check_url(where: str, url: object) -> str:
    """Validate a transfer URL (optionally ``hash:<alg>:<hex>:<url>``); return its scheme."""
    if isinstance(url, str) and url.startswith("hash:"):
        hashed = _HASHED.fullmatch(url)
        if hashed is None:
            raise ValueError(f"{where}: {url!r} needs hash:<algorithm>:<hex digest>:<url>")
        url = hashed.group(1)
    scheme, _, rest = url.partition(":") if isinstance(url, str) else ("", "", "")
    if scheme not in _SCHEMES:
        raise ValueError(f"{where}: {url!r} needs a scheme of {', '.join(_SCHEMES)}")
    if scheme == "container":
        if not rest.startswith("/") or ".." in rest.split("/"):
            raise ValueError(f"{where}: container path must be absolute without '..': {url!r}")
    elif not urlsplit(rest).netloc:
        raise ValueError(f"{where}: {scheme} URL without a host: {url!r}")
    return scheme


def _fileset(value: str | Sequence[str | Mapping[str, Any]] | None) -> Any:
    """A glob, or a list of globs or of ``{desc, includes, excludes}`` objects."""
    if value is None or isinstance(value, str):
        return value
    entries = [dict(e) if isinstance(e, Mapping) else e for e in value]
    for i, entry in enumerate(entries):
        if not isinstance(entry, str) and not (
            isinstance(entry, dict) and entry.keys() <= _FILESET_KEYS
        ):
            raise ValueError(
                f"transfer fileset[{i}]: a glob or {{desc,includes,excludes}}: {entry!r}"
            )
    return entries


class Script:
    """An ExeScript under construction; append-only.

    Each method adds one command and returns the script, so calls chain. A command, once added,
    never changes, and ``to_json`` returns a fresh copy. ``last`` is the index of the command just
    added; ``label=`` names a command so its result can be looked up by name as well.
    """

    def __init__(self) -> None:
        self._commands: list[Command] = []

    def __len__(self) -> int:
        return len(self._commands)

    @property
    def commands(self) -> tuple[Command, ...]:
        return tuple(self._commands)

    @property
    def last(self) -> int:
        if not self._commands:
            raise ValueError("the script has no commands yet")
        return len(self._commands) - 1

    def _add(self, name: str, body: dict[str, Any], label: str | None) -> Self:
        if label is not None and any(c.label == label for c in self._commands):
            raise ValueError(f"label {label!r} is already used in this script")
        self._commands.append(Command(len(self._commands), name, copy.deepcopy(body), label))
        return self

    def deploy(
        self,
        *,
        net: Sequence[DeployNet] = (),
        hosts: Mapping[str, str] | None = None,
        hostname: str | None = None,
        env: Mapping[str, str] | None = None,
        label: str | None = None,
    ) -> Self:
        """Deploy the image. ``env`` is the container's environment (yagna's ``run`` has none);
        ``hosts`` maps names to ips for ``/etc/hosts``."""
        if any(not isinstance(n, DeployNet) for n in net):
            raise TypeError(f"deploy net takes DeployNet items, got {list(net)!r}")
        if hostname is not None and (not isinstance(hostname, str) or not hostname):
            raise ValueError(f"deploy hostname must be a non-empty string, got {hostname!r}")
        nets = [n.to_json() for n in net]
        env_, hosts_ = _str_map("deploy env", env), _str_map("deploy hosts", hosts)
        body = {"env": env_, "hostname": hostname, "hosts": hosts_, "net": nets, "progress": None}
        return self._add("deploy", body, label)

    def start(self, *args: str, label: str | None = None) -> Self:
        return self._add("start", {"args": _strings("start args", args)}, label)

    def run(
        self,
        entry_point: str,
        *args: str,
        stdout: Capture | None = Capture(),  # frozen, so sharing the default is safe
        stderr: Capture | None = Capture(),
        label: str | None = None,
    ) -> Self:
        """Run ``entry_point`` (an absolute path) with ``args``; a ``None`` capture drops it."""
        if not isinstance(entry_point, str) or not entry_point.startswith("/"):
            raise ValueError(f"run entry_point must be an absolute path, got {entry_point!r}")
        argv = _strings("run argv", [entry_point, *args])
        body: dict[str, Any] = {"entry_point": argv[0], "args": argv[1:]}
        capture = {k: c.to_json() for k, c in (("stdout", stdout), ("stderr", stderr)) if c}
        if capture:
            body["capture"] = capture
        return self._add("run", body, label)

    def transfer(
        self,
        src: str,
        dst: str,
        *,
        fmt: str | None = None,
        depth: int | None = None,
        fileset: str | Sequence[str | Mapping[str, Any]] | None = None,
        label: str | None = None,
    ) -> Self:
        """Copy ``src`` to ``dst``; one side must be ``container:`` (files go in or out).
        ``fmt`` is an archive format (``zip``, ``tar.gz``...) unpacked or packed on the way."""
        if "container" not in (_check_url("transfer from", src), _check_url("transfer to", dst)):
            raise ValueError(f"transfer needs a container: side, got {src!r} -> {dst!r}")
        if fmt is not None and (not isinstance(fmt, str) or not fmt):
            raise ValueError(f"transfer format must be a non-empty string, got {fmt!r}")
        _int("transfer depth", depth, minimum=0)
        rest = {"format": fmt, "depth": depth, "fileset": _fileset(fileset), "progress": None}
        return self._add("transfer", {"from": src, "to": dst, **rest}, label)

    def terminate(self, *, label: str | None = None) -> Self:
        return self._add("terminate", {}, label)

    def to_json(self) -> list[dict[str, Any]]:
        """The command list ``ActivityApi.exec`` takes. An empty batch would never report
        ``isBatchFinished``, so it is refused."""
        if not self._commands:
            raise ValueError("an empty ExeScript never finishes; add a command first")
        return [c.to_json() for c in self._commands]


def _output(value: object) -> Output:
    """A captured stream: a string, or (``bin`` capture) a JSON array of bytes."""
    if isinstance(value, list):
        return bytes(value)
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class CommandOutcome:
    """One command's result joined with the command that produced it."""

    command: Command
    ok: bool
    event_date: dt.datetime
    stdout: Output = None
    stderr: Output = None
    message: str | None = None

    @classmethod
    def of(cls, command: Command, r: CommandResult) -> CommandOutcome:
        return cls(command, r.ok, r.event_date, _output(r.stdout), _output(r.stderr), r.message)

    @property
    def index(self) -> int:
        return self.command.index

    @property
    def label(self) -> str | None:
        return self.command.label


class CommandFailedError(GolemActorsError):
    """A command of a batch ended in ``Error``; carries what it printed and yagna's message."""

    def __init__(self, outcome: CommandOutcome) -> None:
        self.outcome, self.command, self.index = outcome, outcome.command, outcome.index
        self.stdout, self.stderr, self.message = outcome.stdout, outcome.stderr, outcome.message
        detail = self.message or "no message"
        if self.stderr:
            detail += f"; stderr: {self.stderr[-300:]!r}"
        super().__init__(f"command {self.index} ({self.command.describe()}) failed: {detail}")


@dataclass(frozen=True)
class BatchResult:
    """The results so far of one batch, per command.

    ``is_finished`` trusts the exe-unit's ``isBatchFinished``, set on the last command or on the
    first error; after an error the later commands never run (``pending`` keeps them).
    """

    commands: tuple[Command, ...]
    outcomes: tuple[CommandOutcome, ...]
    is_finished: bool

    @classmethod
    def parse(cls, script: Script | Sequence[Command], results: Iterable[CommandResult]) -> Self:
        """Join ``results`` (repeats from several polls are fine) to the script's commands."""
        commands = script.commands if isinstance(script, Script) else tuple(script)
        by_index: dict[int, CommandOutcome] = {}
        finished = False
        for r in results:
            if not 0 <= r.index < len(commands):
                raise ValueError(
                    f"result for command {r.index} of a {len(commands)}-command script"
                )
            by_index[r.index] = CommandOutcome.of(commands[r.index], r)
            finished = finished or r.is_batch_finished
        return cls(commands, tuple(by_index[i] for i in sorted(by_index)), finished)

    @property
    def first_error(self) -> CommandOutcome | None:
        return next((o for o in self.outcomes if not o.ok), None)

    @property
    def ok(self) -> bool:
        """Finished, every command reported, none failed."""
        done = len(self.outcomes) == len(self.commands)
        return self.is_finished and done and self.first_error is None

    @property
    def pending(self) -> tuple[Command, ...]:
        """Commands with no result (yet, or ever when the batch stopped at an error)."""
        seen = {o.index for o in self.outcomes}
        return tuple(c for c in self.commands if c.index not in seen)

    def __getitem__(self, key: int | str) -> CommandOutcome:
        """The outcome of the command at an index or with a label; ``KeyError`` if none yet."""
        for outcome in self.outcomes:
            if key in (outcome.index, outcome.label):
                return outcome
        raise KeyError(f"no result for command {key!r}")

    def raise_for_error(self) -> Self:
        """Raise ``CommandFailedError`` for the first failed command; else return self."""
        if (error := self.first_error) is not None:
            raise CommandFailedError(error)
        return self
