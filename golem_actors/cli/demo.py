"""``golem-actors demo``: the typed client against a real yagna it starts and stops itself."""

from __future__ import annotations

import argparse
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from golem_actors.yagna import ApiConfig, YagnaClient

__all__ = ["add_parser", "run", "run_demo"]


def add_parser(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="start a real yagna, do a round of market and payment calls, stop it",
        description="Starts a private yagna daemon (from golem-node) in a temporary directory, "
        "shows its identity, creates and releases an allocation, publishes and withdraws a "
        "demand, then stops the daemon.",
    )
    demo.add_argument("--data-dir", help="data directory for yagna (default: a temporary one)")


def run(args: argparse.Namespace) -> int:
    return run_demo(args.data_dir)


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201


def run_demo(data_dir: str | None) -> int:
    from golem_actors.localnet.node import YagnaNode  # noqa: PLC0415 - keep start-up light

    with tempfile.TemporaryDirectory(prefix="golem-actors-demo-") as tmp:
        node = YagnaNode(Path(data_dir) if data_dir else Path(tmp))
        started = time.monotonic()
        with node:
            _say(f"yagna {node.api_url} up in {time.monotonic() - started:.2f} s (pid {node.pid})")
            config = ApiConfig(app_key=node.requestor.app_key, api_url=node.api_url)
            with YagnaClient(config) as yagna:
                me = yagna.identity.me()
                _say(f"identity   {me.identity} (yagna {yagna.identity.version().version})")
                allocation = yagna.payment.create_allocation(Decimal(5))
                _say(
                    f"allocation {allocation.allocation_id}: {allocation.total_amount} "
                    f"on {allocation.payment_platform}"
                )
                decoration = yagna.payment.demand_decorations([allocation.allocation_id])
                properties = {
                    "golem.srv.comp.expiration": int((time.time() + 600) * 1000),
                    "golem.node.debug.subnet": "public",
                    **decoration.property_dict(),
                }
                constraints = "(&" + "".join(decoration.constraints) + "(golem.runtime.name=vm))"
                demand_id = yagna.market.subscribe_demand(properties, constraints)
                _say(f"demand     {demand_id[:16]}... published: {constraints}")
                events = yagna.market.demand_events(demand_id, timeout=2)
                _say(f"offers     {len(events)} in 2 s (localnet providers come with localnet)")
                yagna.market.unsubscribe_demand(demand_id)
                yagna.payment.release_allocation(allocation.allocation_id)
                _say("released   the demand and the allocation")
        _say("yagna stopped")
    return 0
