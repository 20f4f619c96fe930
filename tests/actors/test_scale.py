"""A cluster grown and shrunk while it runs (``Cluster.scale``), on localnet."""

from __future__ import annotations

from collections.abc import Iterator

import pykka
import pytest

from golem_actors import Golem, ServiceActor, ServiceState, WorkContext
from golem_actors.events import AgreementTerminated, Event, InstanceRestarting
from golem_actors.localnet.network import LocalNet
from tests.actors.remote import recorded

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]


class Looper(ServiceActor):
    def run(self, ctx: WorkContext) -> None:
        while True:
            ctx.run("/bin/true")
            ctx.sleep(0.5)


@pytest.fixture
def golem(localnet: LocalNet) -> Iterator[tuple[Golem, list[Event]]]:
    with recorded(localnet) as session:
        yield session
    assert pykka.ActorRegistry.get_all() == []  # the instances scaled down left nothing behind


def test_a_cluster_grows_and_shrinks_while_it_runs(golem: tuple[Golem, list[Event]]) -> None:
    session, events = golem
    cluster = session.run_service(Looper, 1, params=[{"tag": "first"}])
    assert cluster.wait_running(timeout=60)
    first = cluster.handles[0]

    grown = cluster.scale(3)
    assert [h.instance for h in grown] == ["looper-0", "looper-1", "looper-2"]
    assert cluster.handles == grown
    assert cluster.wait_running(timeout=60), cluster.snapshots()

    kept = cluster.scale(1)
    assert kept == [first]  # the newest were stopped
    removed = grown[1:]
    for handle in removed:
        assert handle.wait_for(ServiceState.TERMINATED, timeout=30), handle.snapshot()
    ended = {e.agreement_id for e in events if isinstance(e, AgreementTerminated)}
    assert {h.agreement_id for h in removed} <= ended  # cleanly: their agreements terminated
    assert not any(isinstance(e, InstanceRestarting) for e in events)  # and not restarted
    assert first.state is ServiceState.RUNNING
    assert [s.instance for s in session.snapshots()] == ["looper-0"]

    again = cluster.scale(2)
    assert [h.instance for h in again] == ["looper-0", "looper-3"]  # names are never reused
    assert cluster.wait_running(timeout=60)
    cluster.handles[1].stop()  # a handle added by scale stops like the others
    assert cluster.handles[1].wait_for(ServiceState.TERMINATED, timeout=30)


def test_scale_refuses_bad_counts_and_a_stopped_cluster(golem: tuple[Golem, list[Event]]) -> None:
    session, _ = golem
    cluster = session.run_service(Looper, 1)
    for bad in (0, -2, True, 1.5, "2"):
        with pytest.raises(ValueError, match="whole number of instances >= 1"):
            cluster.scale(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="params must be a mapping"):
        cluster.scale(2, params=[1])  # type: ignore[arg-type]
    cluster.stop()
    with pytest.raises(RuntimeError, match="cannot scale"):
        cluster.scale(2)
