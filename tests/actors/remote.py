"""A service whose ``ctx`` the test drives: each job, a function of ctx, runs in its ``run``.

One instance serves a whole module's tests, so each test pays for a command, not for an
agreement, an activity and a deploy.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

from golem_actors import Golem, ServiceActor, ServiceState, WorkContext
from golem_actors.cluster import Cluster
from golem_actors.events import Event
from golem_actors.localnet.network import LocalNet
from golem_actors.yagna import ApiConfig

T = TypeVar("T")

Job = tuple[Callable[[WorkContext], Any], "Future[Any]"]


class CtxService(ServiceActor):
    """Runs the jobs put on ``params["jobs"]`` until stopped."""

    def run(self, ctx: WorkContext) -> None:
        jobs: queue.Queue[Job] = self.params["jobs"]
        while not ctx.stopping:
            try:
                fn, future = jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                future.set_result(fn(ctx))
            except BaseException as exc:  # handed to the test that asked
                future.set_exception(exc)


class Remote:
    """The test's end: ``call(fn)`` runs ``fn(ctx)`` in the service, returns what it returns."""

    def __init__(self, golem: Golem, cluster: Cluster, jobs: queue.Queue[Job]) -> None:
        self.golem, self.cluster, self._jobs = golem, cluster, jobs

    def call(self, fn: Callable[[WorkContext], T], timeout: float = 60.0) -> T:
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        return future.result(timeout)


@contextmanager
def recorded(localnet: LocalNet, **golem: Any) -> Iterator[tuple[Golem, list[Event]]]:
    """A started session on ``localnet`` and the list of its events; stopped (and paid) on exit."""
    config = ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)
    session = Golem(config=config, budget="5", settle_timeout_s=20, **golem)
    events: list[Event] = []
    session.start()
    assert session.rt is not None
    session.rt.events.subscribe(events.append)
    try:
        yield session, events
    finally:
        session.stop()


@contextmanager
def remote_ctx(localnet: LocalNet, **golem: Any) -> Iterator[Remote]:
    """A session with one running ``CtxService`` instance; stopped (and paid) on exit."""
    with recorded(localnet, **golem) as (session, _):
        jobs: queue.Queue[Job] = queue.Queue()
        cluster = session.run_service(CtxService, 1, params=[{"jobs": jobs}])
        assert cluster.wait_running(timeout=90), cluster.snapshots()
        assert cluster.handles[0].state is ServiceState.RUNNING
        yield Remote(session, cluster, jobs)
