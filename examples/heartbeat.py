"""A long-running process on a provider, watched by its service.

``start`` launches a background process that writes a heartbeat (the time) every second into
the activity's work volume; ``run`` reads it every few seconds and reports. A stale heartbeat
raises, which ends this instance: the supervisor starts a replacement on another provider.

    golem-actors run examples/heartbeat.py:Heartbeat -n 3
"""

from __future__ import annotations

import logging
import time

from golem_actors import ServiceActor, WorkContext

log = logging.getLogger("heartbeat")

BEAT = "/golem/work/beat"
WRITER = f"while true; do date +%s > {BEAT}.new && mv {BEAT}.new {BEAT}; sleep 1; done"


class Heartbeat(ServiceActor):
    """One heartbeat process per instance; stale for more than ``max_age_s`` means dead."""

    def __init__(self, *, max_age_s: float = 5.0, check_every_s: float = 2.0) -> None:
        super().__init__(max_age_s=max_age_s, check_every_s=check_every_s)
        self.max_age_s = max_age_s
        self.check_every_s = check_every_s

    def start(self, ctx: WorkContext) -> None:
        super().start(ctx)  # deploy and start the container
        ctx.run("/bin/sh", "-c", f"nohup /bin/sh -c '{WRITER}' >/dev/null 2>&1 &")
        deadline = time.monotonic() + 10
        while ctx.run("/bin/sh", "-c", f"test -s {BEAT} && echo yes || echo no").stdout != "yes\n":
            if time.monotonic() > deadline:
                raise RuntimeError("the heartbeat process did not start")
            ctx.sleep(0.2)

    def run(self, ctx: WorkContext) -> None:
        while True:
            beat = int(str(ctx.run("/bin/cat", BEAT).stdout).strip())
            age = time.time() - beat
            if age > self.max_age_s:
                raise RuntimeError(f"the heartbeat on {ctx.provider_name} is {age:.0f} s old")
            log.info("%s: heartbeat %.1f s old", ctx.provider_name, age)
            ctx.sleep(self.check_every_s)
