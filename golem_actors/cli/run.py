"""``golem-actors run app.py:Service -n 3``: services until Ctrl-C, ``--duration`` or escalation.

By default it starts localnet (or joins the one already running in the same data directory, so
``golem-actors localnet status`` in another terminal shows its providers and a fault can be
injected there by hand), and images named by tag or hash are looked up in localnet's own registry
(as ``golem-actors localnet run`` does through ``GOLEM_REGISTRY_URL``). With ``--yagna URL`` it
uses that daemon and ``YAGNA_APPKEY`` instead, and ``GOLEM_REGISTRY_URL`` or the public registry.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
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

from golem_actors.cli.args import port, positive_int, seconds
from golem_actors.datadir import default_data_dir
from golem_actors.golem import Golem, GolemError
from golem_actors.metrics import DEFAULT_NAMESPACE, Metrics
from golem_actors.payments.decisions import Totals
from golem_actors.policy.supervision import RestartIntensity, RestartType, SupervisorPolicy
from golem_actors.service import InstanceSnapshot, ServiceActor
from golem_actors.session_files import JOURNAL_NAME
from golem_actors.status import StatusServer
from golem_actors.storage.select import STORAGE_KINDS
from golem_actors.summary import RunSummary
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
        "-n", "--instances", type=positive_int, default=1, help="instances (default 1)"
    )
    run_.add_argument("--budget", default="5", help="GLM to allocate (default 5)")
    run_.add_argument("--subnet", default="public", help="subnet tag (default public)")
    run_.add_argument(
        "--providers", type=positive_int, default=4, help="localnet providers (default 4)"
    )
    run_.add_argument("--data-dir", type=Path, default=None, help="localnet data directory")
    run_.add_argument(
        "--yagna", metavar="URL", help="use this yagna (and YAGNA_APPKEY), not localnet"
    )
    run_.add_argument("--payment-platform", default="erc20-holesky-tglm")
    run_.add_argument(
        "--storage",
        choices=STORAGE_KINDS,
        default="gftp",
        help="how files move: gftp through your yagna (default), or http on 127.0.0.1",
    )
    run_.add_argument("--duration", type=seconds, metavar="S", help="stop after S seconds")
    run_.add_argument(
        "--metrics-port",
        type=port,
        default=None,
        metavar="P",
        help="serve Prometheus /metrics and JSON /status on this port (0: any free port)",
    )
    run_.add_argument("--metrics-addr", default="127.0.0.1", help="address for --metrics-port")
    run_.add_argument(
        "--metrics-namespace",
        default=DEFAULT_NAMESPACE,
        metavar="NS",
        help=f"prefix of every metric name (default {DEFAULT_NAMESPACE})",
    )
    # Also accepted after `run` (argparse.SUPPRESS keeps a value given before `run`).
    run_.add_argument(
        "--log-level",
        default=argparse.SUPPRESS,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level on stderr (default: WARNING)",
    )
    run_.add_argument(
        "--debug-api",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log every yagna call (method, path, status, duration); app keys are never logged",
    )
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
    run_.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the run's directory (its journal); a run already there is resumed "
        "(default: a new one under DATA_DIR/runs)",
    )
    run_.add_argument(
        "--resume",
        action="store_true",
        help="resume the newest run under DATA_DIR/runs: end what it left open, pay what it owes",
    )
    run_.add_argument(
        "--events-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="write every event as a JSON line to FILE (read it with `golem-actors events FILE`)",
    )
    run_.add_argument(
        "--stream-output",
        action="store_true",
        help="log what each command prints as it prints it (logger golem_actors.output, INFO)",
    )
    run_.add_argument(
        "--blacklist-ttl",
        type=float,
        default=600.0,
        metavar="S",
        help="a provider that failed an instance is not used by its service for S seconds "
        "(default 600)",
    )


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
def _network(args: argparse.Namespace) -> Iterator[tuple[ApiConfig, str | None]]:
    """The yagna to use and the image registry to ask (None: ``Golem``'s default, the env's)."""
    if args.yagna:
        yield ApiConfig.from_env(api_url=args.yagna), None
        return
    # localnet only on this path: a run on your own yagna needs nothing of the [localnet] extra.
    from golem_actors.localnet.session import localnet_endpoint  # noqa: PLC0415

    data_dir = args.data_dir or default_data_dir()
    with localnet_endpoint(data_dir, args.providers, say=_say) as endpoint:
        # Its providers can fetch what its registry names; a tag is looked up there, not in the
        # public registry (a running localnet predating its registry has none: the default).
        config = ApiConfig(app_key=endpoint.app_key, api_url=endpoint.api_url)
        yield config, endpoint.registry_url


def _policy(args: argparse.Namespace, service_cls: type[ServiceActor]) -> SupervisorPolicy:
    """The supervision options, checked before anything starts."""
    try:
        return SupervisorPolicy(
            restart_type=service_cls.restart_type or RestartType.PERMANENT,
            intensity=RestartIntensity(args.max_restarts, args.restart_window),
            blacklist_ttl_s=args.blacklist_ttl,
            service=service_cls.__name__,
        )
    except ValueError as exc:
        flags = "--max-restarts, --restart-window, --blacklist-ttl"
        raise GolemError(f"bad supervision option ({flags}): {exc}") from None


def run(args: argparse.Namespace) -> int:
    service_cls = load_service(args.service)
    params = _params(args.param, args.instances)
    try:
        budget = Decimal(args.budget)
    except ArithmeticError:
        raise GolemError(f"--budget must be a number of GLM, got {args.budget!r}") from None
    policy = _policy(args, service_cls)
    metrics = Metrics(args.metrics_namespace) if args.metrics_port is not None else None
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
        return _run(args, service_cls, params, budget, stop, metrics=metrics, policy=policy)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(
    args: argparse.Namespace,
    service_cls: type[ServiceActor],
    params: list[dict[str, Any]],
    budget: Decimal,
    stop: threading.Event,
    *,
    metrics: Metrics | None,
    policy: SupervisorPolicy,
) -> int:
    run_dir = run_directory(args)
    with _network(args) as (config, registry_url):
        golem = Golem(
            config=config,
            registry_url=registry_url,
            budget=budget,
            subnet=args.subnet,
            payment_platform=args.payment_platform,
            storage=args.storage,
            journal=run_dir,
            events_file=args.events_file,
        )
        golem.start()
        resumed = golem.journal is not None and golem.journal.resumed
        _say(f"# run directory: {run_dir}{' (resumed)' if resumed else ''}")
        assert golem.rt is not None
        summary = RunSummary()
        summary.attach(golem.rt.events)
        server = None
        try:
            if metrics is not None:
                metrics.bind(golem)
                server = StatusServer(
                    golem, host=args.metrics_addr, port=args.metrics_port, metrics=metrics
                )
                _say(f"# /metrics and /status on {server.url}")
            if args.stream_output:  # shown whatever --log-level says of the rest
                logging.getLogger("golem_actors.output").setLevel(logging.INFO)
            cluster = golem.run_service(
                service_cls,
                args.instances,
                params=params,
                policy=policy,
                stream_output=args.stream_output,
            )
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
            if metrics is not None:
                metrics.unbind()
            summary.detach()
        _say(summary.render(totals))
        _summary(golem, totals)
        if cluster.escalated:
            print(f"golem-actors: escalated: {cluster.escalated}", file=sys.stderr)  # noqa: T201
            return 1
    return 0


def run_directory(args: argparse.Namespace) -> Path:
    """``--run-dir``, the newest run with ``--resume``, or a new directory under DATA_DIR/runs."""
    if args.run_dir is not None:
        if args.run_dir.exists() and not args.run_dir.is_dir():
            raise GolemError(f"--run-dir {args.run_dir} exists and is not a directory")
        return Path(args.run_dir)
    runs = (args.data_dir or default_data_dir()) / "runs"
    if args.resume:
        found = sorted(p for p in runs.glob("*") if (p / JOURNAL_NAME).is_file())
        if not found:
            raise GolemError(f"--resume: no run to resume under {runs}")
        return found[-1]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return runs / stamp


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
