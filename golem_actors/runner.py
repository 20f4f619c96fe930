"""``golem-actors run app.py:Service -n 3``: services until Ctrl-C, ``--duration`` or escalation.

By default it starts localnet (or joins the one already running in the same data directory, so
``golem-actors localnet status`` in another terminal shows its providers and a fault can be
injected there by hand). With ``--yagna URL`` it uses that daemon and ``YAGNA_APPKEY`` instead.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from golem_actors.golem import Golem, GolemError
from golem_actors.localnet.network import STATE_FILE, LocalNet, default_data_dir
from golem_actors.policy.payments import Totals
from golem_actors.policy.restart import RestartIntensity, RestartType, SupervisorPolicy
from golem_actors.service import InstanceSnapshot, ServiceActor
from golem_actors.status import StatusServer
from golem_actors.yagna import ApiConfig

__all__ = ["add_parser", "load_service", "run"]

log = logging.getLogger(__name__)


def add_parser(commands: Any) -> None:
    run_ = commands.add_parser(
        "run",
        help="run N instances of a service, kept alive by a supervisor",
        description="Runs a ServiceActor subclass from a Python file on localnet (default) or "
        "on your own yagna, restarting failed instances on other providers.",
    )
    run_.add_argument("service", help="path/to/app.py:ServiceClass")
    run_.add_argument(
        "-n", "--instances", type=_positive_int, default=1, help="instances (default 1)"
    )
    run_.add_argument("--budget", default="5", help="GLM to allocate (default 5)")
    run_.add_argument("--subnet", default="public", help="subnet tag (default public)")
    run_.add_argument(
        "--providers", type=_positive_int, default=4, help="localnet providers (default 4)"
    )
    run_.add_argument("--data-dir", type=Path, default=None, help="localnet data directory")
    run_.add_argument(
        "--yagna", metavar="URL", help="use this yagna (and YAGNA_APPKEY), not localnet"
    )
    run_.add_argument("--payment-platform", default="erc20-holesky-tglm")
    run_.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    run_.add_argument(
        "--metrics-port", type=int, default=None, metavar="P", help="serve /metrics and /status"
    )
    run_.add_argument("--metrics-addr", default="127.0.0.1", help="address for --metrics-port")
    run_.add_argument(
        "--param", action="append", default=[], metavar="K=V", help="instance parameter"
    )
    run_.add_argument("--no-table", action="store_true", help="no live table")
    run_.add_argument(
        "--max-restarts",
        type=int,
        default=5,
        metavar="N",
        help="more restarts than N within --restart-window escalate: the run stops (default 5)",
    )
    run_.add_argument(
        "--restart-window", type=float, default=60.0, metavar="S", help="(default 60)"
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def load_service(spec: str) -> type[ServiceActor]:
    """Import ``path/to/app.py:ClassName`` and check it is a usable ServiceActor."""
    path_text, sep, name = spec.rpartition(":")
    if not sep or not path_text or not name:
        raise GolemError(f"expected path/to/app.py:ServiceClass, got {spec!r}")
    path = Path(path_text)
    if not path.is_file():
        raise GolemError(f"{path} is not a file")
    module_spec = importlib.util.spec_from_file_location(f"golem_app_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise GolemError(f"cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise GolemError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    cls = getattr(module, name, None)
    if cls is None:
        found = [
            k
            for k, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, ServiceActor) and v is not ServiceActor
        ]
        raise GolemError(f"{path} has no {name!r} (services there: {', '.join(found) or 'none'})")
    if not (isinstance(cls, type) and issubclass(cls, ServiceActor)):
        raise GolemError(f"{spec} is not a subclass of golem_actors.ServiceActor")
    cls.validate()
    return cls


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201


def _params(pairs: list[str], count: int) -> list[dict[str, Any]]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise GolemError(f"--param takes KEY=VALUE, got {pair!r}")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return [dict(params) for _ in range(count)]


@contextlib.contextmanager
def _network(args: argparse.Namespace) -> Iterator[ApiConfig]:
    if args.yagna:
        yield ApiConfig.from_env(api_url=args.yagna)
        return
    data_dir = args.data_dir or default_data_dir()
    running = _running_localnet(data_dir)
    if running is not None:
        _say(f"# using the local network already running in {data_dir}")
        yield running
        return
    started = time.monotonic()
    with LocalNet(providers=args.providers, data_dir=data_dir) as net:
        took = time.monotonic() - started
        _say(f"# localnet: {args.providers} providers up in {took:.1f} s ({data_dir})")
        yield ApiConfig(app_key=net.app_key, api_url=net.api_url)


def _running_localnet(data_dir: Path) -> ApiConfig | None:
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
        keys = json.loads((data_dir / "yagna" / "localnet-identities.json").read_text())
    except (OSError, ValueError):
        return None
    lock = data_dir / "localnet.lock"
    import fcntl  # noqa: PLC0415

    with lock.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return ApiConfig(app_key=keys["default_key"], api_url=state["api_url"])
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None  # a stale state file: nobody holds the lock


def run(args: argparse.Namespace) -> int:
    service_cls = load_service(args.service)
    params = _params(args.param, args.instances)
    try:
        budget = Decimal(args.budget)
    except ArithmeticError:
        raise GolemError(f"--budget must be a number of GLM, got {args.budget!r}") from None
    stop = threading.Event()
    interrupts = 0

    def on_signal(*_: object) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _run(args, service_cls, params, budget, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(
    args: argparse.Namespace,
    service_cls: type[ServiceActor],
    params: list[dict[str, Any]],
    budget: Decimal,
    stop: threading.Event,
) -> int:
    with _network(args) as config:
        golem = Golem(
            config=config, budget=budget, subnet=args.subnet, payment_platform=args.payment_platform
        )
        golem.start()
        server = None
        try:
            if args.metrics_port is not None:
                server = StatusServer(golem, host=args.metrics_addr, port=args.metrics_port)
                _say(f"# /metrics and /status on {server.url}")
            policy = SupervisorPolicy(
                restart_type=service_cls.restart_type or RestartType.PERMANENT,
                intensity=RestartIntensity(args.max_restarts, args.restart_window),
                service=service_cls.__name__,
            )
            cluster = golem.run_service(service_cls, args.instances, params=params, policy=policy)
            deadline = time.monotonic() + args.duration if args.duration else None
            table = _Table(enabled=not args.no_table)
            while not stop.wait(1.0):
                table.show(golem.snapshots(), golem)
                if cluster.escalated or cluster.state.finished.is_set():
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
            _say("# stopping: terminating agreements and paying invoices ...")
        finally:
            totals = golem.stop()
            if server is not None:
                server.close()
        _summary(golem, totals)
        if cluster.escalated:
            print(f"golem-actors: escalated: {cluster.escalated}", file=sys.stderr)  # noqa: T201
            return 1
    return 0


def _summary(golem: Golem, totals: Totals | None) -> None:
    if totals is None:
        _say("# no payment totals: the payment actor did not answer")
        return
    spent = golem.final_allocation.spent_amount if golem.final_allocation else None
    _say(
        f"# paid {totals.invoices} GLM in invoices (yagna: {spent} GLM spent); "
        f"{totals.remaining} GLM of the {totals.budget} GLM budget left"
    )


class _Table:
    """The live table: redrawn in place on a terminal, printed on change otherwise."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stdout.isatty()
        self._last = ""

    def show(self, snapshots: list[InstanceSnapshot], golem: Golem) -> None:
        if not self.enabled:
            return
        header = f"{'instance':<16} {'state':<13} {'provider':<14} {'uptime':>8} {'restarts':>8}"
        rows = [header + "  last exit"]
        rows += [
            f"{s.instance:<16} {s.state.value:<13} {(s.provider_name or '-')[:14]:<14} "
            f"{s.uptime_s:>7.0f}s {s.restarts:>8}  {(s.last_exit or '')[:60]}"
            for s in snapshots
        ]
        totals = golem.totals()
        if totals is not None:
            rows.append(f"cost so far: {totals.committed} GLM of {totals.budget} GLM budget")
        text = "\n".join(rows)
        if self.tty:
            print("\x1b[H\x1b[J" + text, flush=True)  # noqa: T201
        elif text != self._last:
            print(text + "\n", flush=True)  # noqa: T201
        self._last = text
