"""The service the fault rounds run: deploys, starts, and runs a command every half second."""

from __future__ import annotations

from golem_actors import ServiceActor, WorkContext


class Sleeper(ServiceActor):
    def run(self, ctx: WorkContext) -> None:
        while True:
            ctx.run("/bin/true")
            ctx.sleep(0.5)
