"""``golem-actors localnet ...``: run a local network, show it, inject faults into it.

localnet is imported where a command needs it, not when the parser is built: ``golem-actors``
without the [localnet] extra still runs on your own yagna, and these commands say what to install.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from golem_actors.cli.args import positive_int
from golem_actors.datadir import default_data_dir
from golem_actors.extras import MissingExtraError

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Add the ``localnet`` command and its sub-commands to the console script's parser."""
    localnet = commands.add_parser(
        "localnet", help="a local Golem network: real yagna, Python providers"
    )
    sub = localnet.add_subparsers(dest="localnet_command", required=True, metavar="COMMAND")
    data_dir = argparse.ArgumentParser(add_help=False)
    data_dir.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"network data directory (default: {default_data_dir()})",
    )

    up = sub.add_parser("up", parents=[data_dir], help="start the network and run until Ctrl-C")
    up.add_argument("--providers", type=positive_int, default=4, help="provider nodes (default: 4)")
    up.add_argument(
        "--shared-daemon", action="store_true", help="one yagna for every provider (large runs)"
    )

    run_ = sub.add_parser(
        "run",
        parents=[data_dir],
        help="run a command against localnet (started for it unless one is up)",
        description="Runs COMMAND with YAGNA_API_URL and YAGNA_APPKEY of the localnet running in "
        "the data directory; if none is, starts one for the command and stops it after. "
        "Example: golem-actors localnet run -- python examples/keyspace_search.py",
    )
    run_.add_argument(
        "--providers", type=positive_int, default=4, help="provider nodes (default: 4)"
    )
    run_.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")

    status = sub.add_parser("status", parents=[data_dir], help="show the running network")
    status.add_argument("--json", action="store_true", help="print JSON")

    sub.add_parser(
        "env", parents=[data_dir], help="print the export lines (YAGNA_*, GOLEM_REGISTRY_URL)"
    )

    images = sub.add_parser("images", parents=[data_dir], help="list or add localnet images")
    images_sub = images.add_subparsers(dest="images_command", metavar="COMMAND")
    add = images_sub.add_parser("add", parents=[data_dir], help="add a GVMI or a rootfs")
    add.add_argument("source", type=Path, help="a .gvmi, a directory (packed) or a .tar/.tar.gz")
    add.add_argument("--tag", help="its registry tag, name:version (e.g. myapp:1.0)")

    fault = sub.add_parser(
        "fault", parents=[data_dir], help="inject a fault into a running provider"
    )
    fault.add_argument("provider", help="provider name, e.g. provider-2")
    fault.add_argument(
        "--crash", nargs="?", const="now", choices=_crash_points(), help="crash now or at a point"
    )
    fault.add_argument("--hang", action="store_true", help="stop answering (no usage, no results)")
    fault.add_argument("--reject-proposals", action="store_true", help="reject every demand")
    fault.add_argument(
        "--terminate-after", type=float, metavar="S", help="end agreements after S s"
    )
    fault.add_argument("--overcharge", type=float, metavar="X", help="multiply amounts by X")
    fault.add_argument("--exec-delay", type=float, metavar="S", help="slow every command by S s")
    fault.add_argument("--clear", action="store_true", help="remove every fault")
    for action, what in (
        ("kill", "SIGKILL: the node leaves"),
        ("pause", "SIGSTOP"),
        ("resume", "SIGCONT"),
    ):
        fault.add_argument(f"--{action}-daemon", action="store_true", help=f"its yagna: {what}")


def _crash_points() -> tuple[str, ...] | None:
    """The choices of ``fault --crash``; None without the extra (the command then names it)."""
    try:
        from golem_actors.localnet.faults import CRASH_POINTS  # noqa: PLC0415
    except MissingExtraError:
        return None
    return CRASH_POINTS


def run(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir or default_data_dir()
    command = args.localnet_command
    if command == "up":
        return _up(args.providers, data_dir, shared=args.shared_daemon)
    if command == "images":
        return _images(args, data_dir)
    if command == "run":
        return _run_command(args.cmd, args.providers, data_dir)
    state = _read_state(data_dir)
    if command == "status":
        _print_status(state, as_json=args.json)
        return 0
    if command == "env":
        _print_env(data_dir, state)
        return 0
    return 0 if _daemon_fault(args, state) else _fault(args, data_dir, state)


def _say(text: str = "") -> None:
    print(text, flush=True)  # noqa: T201


def _up(providers: int, data_dir: Path, *, shared: bool = False) -> int:
    from golem_actors.localnet.network import LocalNet  # noqa: PLC0415

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()
    net = LocalNet(providers=providers, data_dir=data_dir, shared_daemon=shared)
    net.start()
    try:
        phases = ", ".join(f"{phase} {took:.1f} s" for phase, took in net.startup.items())
        _say(f"# localnet up in {time.monotonic() - started:.1f} s ({data_dir}; {phases})")
        _say(f"export YAGNA_API_URL={net.api_url}")
        _say(f"export YAGNA_APPKEY={net.app_key}")
        _say(f"export GOLEM_REGISTRY_URL={net.images_url}")
        _say()
        _print_status(net.status(), as_json=False)
        _say("\n# Ctrl-C stops every process started here")
        stop.wait()
    finally:
        _say("# stopping localnet ...")
        net.stop()
    return 0


def _run_command(cmd: list[str], providers: int, data_dir: Path) -> int:
    """Run ``cmd`` with localnet's endpoint in its environment; its exit code is ours."""
    from golem_actors.localnet.network import LocalNetError  # noqa: PLC0415
    from golem_actors.localnet.session import localnet_endpoint  # noqa: PLC0415

    if cmd[:1] == ["--"]:
        cmd = cmd[1:]
    if not cmd:
        raise LocalNetError("nothing to run: give a command after --, e.g. -- python app.py")
    with localnet_endpoint(data_dir, providers, say=_say) as endpoint:
        # Ctrl-C reaches the command too (same terminal): let it stop and pay, then stop here.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            child = subprocess.run(cmd, env={**os.environ, **endpoint.env()}, check=False)
        except OSError as exc:
            raise LocalNetError(f"cannot run {cmd[0]!r}: {exc}") from None
        finally:
            signal.signal(signal.SIGINT, previous)
    return child.returncode


def _images(args: argparse.Namespace, data_dir: Path) -> int:
    from golem_actors.localnet.images import ImageStore  # noqa: PLC0415
    from golem_actors.localnet.network import STATE_FILE  # noqa: PLC0415

    store = ImageStore(data_dir / "images")
    try:
        base_url = json.loads((data_dir / STATE_FILE).read_text()).get("images_url")
    except (OSError, ValueError):
        base_url = None
    if getattr(args, "images_command", None) == "add":
        image = store.add(args.source, tag=args.tag)
        _say(f"added {image.hash} ({image.kind}, {image.size} bytes, tag {image.tag or '-'})")
        if base_url:
            _say(f"task package: {store.task_package(image, base_url)}")
            if image.tag:
                _say(f"registry: {base_url}/v1/image/info?tag={image.tag}")
        else:
            _say("task package: start `golem-actors localnet up` for a URL that serves it")
        return 0
    images = store.list()
    if not images:
        _say(f"no images in {store.root} (the default image is the host's read-only system)")
        return 0
    _say(f"{'hash':<56}  {'tag':<20} {'size':>12}  source")
    for image in images:
        _say(f"{image.hash:<56}  {(image.tag or '-'):<20} {image.size:>12}  {image.source}")
    return 0


def _read_state(data_dir: Path) -> dict[str, Any]:
    from golem_actors.localnet.network import STATE_FILE, LocalNetError  # noqa: PLC0415

    try:
        state: dict[str, Any] = json.loads((data_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        raise LocalNetError(
            f"no local network is running in {data_dir}; start one with `golem-actors localnet up`"
        ) from None
    return state


def _print_status(state: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        _say(json.dumps(state, indent=2))
        return
    _say(f"yagna {state['api_url']} (pid {state['yagna_pid']}), requestor {state['requestor_id']}")
    header = (
        f"{'provider':<12} {'state':<12} {'pid':>7} {'yagna':>7} {'threads':>7} {'mem':>5} "
        f"{'start':>8} {'GLM/s':>9} {'GLM/cpu-s':>9}  node id"
    )
    _say(header)
    for p in state["providers"]:
        prices = p["prices"]
        _say(
            f"{p['name']:<12} {p['state']:<12} {p['pid'] or '-':>7} {p['daemon']['pid'] or '-':>7} "
            f"{p['cpu_threads']:>7} "
            f"{p['mem_gib']:>5g} {prices['start']:>8} {prices['duration_sec']:>9} "
            f"{prices['cpu_sec']:>9}  {p['node_id']}"
        )


def _print_env(data_dir: Path, state: dict[str, Any]) -> None:
    identities = json.loads((data_dir / "yagna" / "localnet-identities.json").read_text())
    _say(f"export YAGNA_API_URL={state['api_url']}")
    _say(f"export YAGNA_APPKEY={identities['default_key']}")
    if state.get("registry_url"):
        _say(f"export GOLEM_REGISTRY_URL={state['registry_url']}")


def _daemon_fault(args: argparse.Namespace, state: dict[str, Any]) -> bool:
    from golem_actors.localnet.daemons import DAEMON_SIGNALS, signal_node  # noqa: PLC0415

    action = next((a for a in DAEMON_SIGNALS if getattr(args, f"{a}_daemon")), None)
    if action is not None:
        _say(f"{args.provider}'s yagna (pid {signal_node(state, args.provider, action)}): {action}")
    return action is not None


def _fault(args: argparse.Namespace, data_dir: Path, state: dict[str, Any]) -> int:
    from golem_actors.localnet.faults import FaultFile, Faults  # noqa: PLC0415
    from golem_actors.localnet.network import LocalNetError  # noqa: PLC0415

    entry = next((p for p in state["providers"] if p["name"] == args.provider), None)
    if entry is None:
        names = ", ".join(p["name"] for p in state["providers"])
        raise LocalNetError(f"no provider named {args.provider!r} (running: {names})")
    if args.crash == "now":
        os.kill(entry["pid"], signal.SIGKILL)
        _say(f"{args.provider} (pid {entry['pid']}) killed")
        return 0
    fault_file = FaultFile(data_dir / "providers" / args.provider / "faults.json")
    faults = Faults() if args.clear else fault_file.read()
    changes: dict[str, Any] = {}
    if args.crash:
        changes["crash_at"] = args.crash
    if args.hang:
        changes["hang"] = True
    if args.reject_proposals:
        changes["reject_proposals"] = True
    for knob in ("terminate_after", "overcharge", "exec_delay"):
        if getattr(args, knob) is not None:
            changes[knob] = getattr(args, knob)
    if not changes and not args.clear:
        _say("nothing to change; see `golem-actors localnet fault --help`")
        return 2
    try:
        faults = faults.with_changes(**changes)
    except ValueError as exc:
        print(f"golem-actors: error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    fault_file.write(faults)
    _say(f"{args.provider}: {faults}")
    return 0
