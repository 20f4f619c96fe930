"""A localnet provider agent: one OS process per provider node, speaking yagna like ya-provider.

The agent owns four pieces, each running one of a provider's loops on its own thread with its own
yagna client (long-polls hold a connection each):

- ``Market``: publishes the offer, answers demands, passes agreements on;
- ``Agreements``: approves them, notices their end, closes them (activities, termination, invoice);
- ``Activities``: serves activity create/destroy, an exe-unit per activity, state over the bus;
- ``Billing``: debit notes at the agreed interval, the invoice, notes left unaccepted.

They share the ``Ledger`` (offer, open agreements, running activities) and the ``Context``
(config, fault knobs, stop signal, worker pool, status file). The agent's own clock ticks once a
second: usage reports first (yagna marks an activity Unresponsive 5 s after its last report and
destroys it at 10 s), then billing, so that a debit note bills the cpu seconds just read.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from golem_actors.localnet import gsb as gsblib
from golem_actors.localnet.exeunit import exeunit_factory
from golem_actors.localnet.faults import FaultFile
from golem_actors.localnet.images import ImageStore
from golem_actors.localnet.provider.activities import Activities
from golem_actors.localnet.provider.agreements import Agreements
from golem_actors.localnet.provider.billing import Billing
from golem_actors.localnet.provider.config import ProviderConfig
from golem_actors.localnet.provider.market import Market
from golem_actors.localnet.provider.shared import Context, ExeUnitFactory, Ledger, Status
from golem_actors.localnet.runtime import RuntimeSettings
from golem_actors.localnet.tap import vpn_unavailable

__all__ = ["ProviderAgent", "honest_capabilities", "main", "sandboxed_exeunits"]

log = logging.getLogger(__name__)

USAGE_INTERVAL = 1.0  # like the real exe-unit's DEFAULT_REPORT_INTERVAL
IMAGE_TIMEOUT = 60.0  # the longest a deploy may spend fetching its image


class ProviderAgent:
    """The provider's pieces and their threads; ``run()`` blocks until ``stop()``."""

    def __init__(
        self, config: ProviderConfig, exeunit_factory: ExeUnitFactory | None = None
    ) -> None:
        self.config = config
        name = config.spec.name
        state_dir = Path(config.state_dir)
        self.ledger = Ledger()
        # Result long-polls hold a handler thread each (threads are only made when needed).
        self.gsb = gsblib.GsbClient(config.gsb_url, name=f"localnet-{name}", max_handlers=256)
        self.ctx = Context(
            config=config,
            faults=FaultFile(state_dir / "faults.json"),
            stop=threading.Event(),
            status=Status(state_dir, name, config.node_id, self.ledger),
            pool=ThreadPoolExecutor(8, thread_name_prefix=f"{name}-work"),
        )
        self.activities = Activities(self.ctx, self.ledger, self.gsb, exeunit_factory)
        self.billing = Billing(self.ctx, self.ledger)
        self.agreements = Agreements(self.ctx, self.ledger, self.activities, self.billing)
        self.market = Market(self.ctx, self.ledger, self.agreements)

    def run(self) -> None:
        self.gsb.connect()
        with self.ctx.yagna() as yagna:
            self.market.publish(yagna)
        self.ctx.status.write("ready")
        loops: dict[str, Callable[[], None]] = {
            "market": self.market.run,
            "agreements": self.agreements.run,
            "activities": self.activities.run,
            "billing": self.billing.run,
            "clock": self._clock,
        }
        for what, loop in loops.items():
            threading.Thread(
                target=self._guard,
                args=(what, loop),
                name=f"{self.config.spec.name}-{what}",
                daemon=True,  # a loop parked in a long-poll must not delay the exit
            ).start()
        self.ctx.stop.wait()
        self._shutdown()

    def stop(self) -> None:
        self.ctx.stop.set()

    def _guard(self, what: str, loop: Callable[[], None]) -> None:
        """A loop that dies takes the provider down loudly, never silently half-working."""
        try:
            loop()
        except Exception:
            log.exception("%s: the %s loop failed; stopping the provider", self.ctx.name, what)
            self.ctx.stop.set()

    def _clock(self) -> None:
        """Once a second: usage reports, debit notes due, overdue notes, timed terminations."""
        with self.ctx.yagna() as yagna:
            next_tick = time.monotonic()
            while not self.ctx.stop.wait(max(0.0, next_tick - time.monotonic())):
                next_tick += USAGE_INTERVAL
                if self.ctx.faults.read().hang:
                    continue
                now = time.monotonic()
                self.activities.report_usage(now)
                for ending in self.billing.tick(yagna, now):
                    finish = functools.partial(self.agreements.finish, terminate=True)
                    self.ctx.submit(finish, ending.agreement_id, ending.reason)

    def _shutdown(self) -> None:
        with self.ctx.yagna() as yagna:
            self.market.withdraw(yagna)
            self.agreements.end_all(yagna, "Provider shutting down")
        self.ctx.pool.shutdown(wait=True, cancel_futures=True)
        self.activities.stop_all()
        self.gsb.close()
        self.ctx.status.write("stopped")


def sandboxed_exeunits(config: ProviderConfig) -> ExeUnitFactory:
    """The real exe-units: bubblewrap sandboxes under ``<state_dir>/activities/<id>``, images
    from the network's shared store. Volumes left by an earlier run (killed) are removed."""
    state_dir = Path(config.state_dir)
    activities = state_dir / "activities"
    shutil.rmtree(activities, ignore_errors=True)
    images = ImageStore(Path(config.image_dir or state_dir.parent.parent / "images"))
    settings = RuntimeSettings(
        activities_dir=activities,
        resolve_image=lambda package: images.rootfs(package, timeout=IMAGE_TIMEOUT),
        command_timeout=config.command_timeout,
    )
    return exeunit_factory(settings)


def honest_capabilities(config: ProviderConfig, vpn_missing: str | None) -> ProviderConfig:
    """The config minus the ``vpn`` capability when this machine cannot give a container its
    VPN interface (``vpn_missing`` says why): a demand that needs VPN then never gets this
    provider's offer, instead of an agreement whose deploy would fail."""
    spec = config.spec
    if vpn_missing is None or "vpn" not in spec.capabilities:
        return config
    log.warning("%s: not offering the vpn capability: %s", spec.name, vpn_missing)
    kept = tuple(c for c in spec.capabilities if c != "vpn")
    return dataclasses.replace(config, spec=dataclasses.replace(spec, capabilities=kept))


def main(argv: list[str] | None = None) -> int:
    """``python -m golem_actors.localnet.provider CONFIG``: run until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="golem_actors.localnet.provider")
    parser.add_argument("config", type=Path, help="the provider's JSON config file")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = ProviderConfig.from_json(json.loads(args.config.read_text()))
    config = honest_capabilities(config, vpn_unavailable())
    agent = ProviderAgent(config, sandboxed_exeunits(config))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: agent.stop())
    agent.run()
    return 0
