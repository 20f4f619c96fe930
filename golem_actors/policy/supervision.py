"""What a cluster supervisor does when one of its service instances ends.

Pure policy: no threads, no clock reads, no randomness of its own. The caller passes ``now`` (a
monotonic time in seconds) and ``rand`` (a ``() -> float`` in ``[0, 1)``), and stores the
``SupervisorState`` value that each decision returns, so every rule here is tested exhaustively
and fast, and the supervisor actor stays a thin loop around :func:`decide`.

The semantics are OTP's (restart types, one_for_one / one_for_all, restart intensity with
escalation) plus Akka's exponential backoff with jitter, which OTP lacks and Golem needs: every
restart negotiates a new agreement on a different provider, and yagna rate-limits. A provider
under an instance that ended abnormally is blacklisted for the cluster for a TTL, because on the
Golem market the cheapest offer is usually the same provider again.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from golem_actors import arguments

__all__ = [
    "Action",
    "Backoff",
    "Blacklist",
    "ChildRecord",
    "ExitReason",
    "RestartDecision",
    "RestartIntensity",
    "RestartType",
    "Strategy",
    "SupervisorPolicy",
    "SupervisorState",
    "decide",
]


class Strategy(enum.Enum):
    """Which children restart when one of them fails (OTP's supervisor strategies)."""

    ONE_FOR_ONE = "one_for_one"  # only the failed child: independent instances (the default)
    ONE_FOR_ALL = "one_for_all"  # every child: instances that only work together


class RestartType(enum.Enum):
    """Whether an ended child is restarted (OTP's child restart types)."""

    PERMANENT = "permanent"  # always, even after a normal exit: a long-running service
    TRANSIENT = "transient"  # only after an abnormal exit: work that may finish
    TEMPORARY = "temporary"  # never


class ExitReason(enum.Enum):
    """Why a service instance ended: a closed set, so it can label a metric."""

    NORMAL = "normal"  # run() returned: the work is done
    SHUTDOWN = "shutdown"  # stopped on request (the user, the supervisor, the runtime ending)
    START_FAILED = "start_failed"  # the service's start() raised
    RUN_FAILED = "run_failed"  # the service's run() raised
    ACTIVITY_GONE = "activity_gone"  # the activity vanished under a live instance
    EXEC_FAILED = "exec_failed"  # an ExeScript batch failed on the provider
    UNRESPONSIVE = "unresponsive"  # too many missed health checks
    AGREEMENT_TERMINATED_BY_PROVIDER = "agreement_terminated_by_provider"
    AGREEMENT_FAILED = "agreement_failed"  # could not get an agreement, or keep one
    CRASH = "crash"  # anything else that escaped: a bug, ours or the user's

    @property
    def abnormal(self) -> bool:
        """OTP's rule: every reason but ``normal`` and ``shutdown`` is a failure."""
        return self not in _NORMAL_REASONS


_NORMAL_REASONS = frozenset({ExitReason.NORMAL, ExitReason.SHUTDOWN})


@dataclass(frozen=True)
class RestartIntensity:
    """OTP's restart intensity: more than ``max_restarts`` within ``period_s`` means give up.

    A value: ``record`` returns a new one. ``restarts`` holds the times of the restarts still
    inside the window (older ones are dropped as time passes, so the tuple stays small). A
    restart exactly ``period_s`` ago has left the window.
    """

    max_restarts: int
    period_s: float
    restarts: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        arguments.whole("RestartIntensity.max_restarts", self.max_restarts, ge=0)
        arguments.number("RestartIntensity.period_s", self.period_s, gt=0)
        if any(b < a for a, b in zip(self.restarts, self.restarts[1:], strict=False)):
            raise ValueError("RestartIntensity.restarts must be in time order")

    def count(self, now: float) -> int:
        """How many restarts fall within the window ending at ``now``."""
        arguments.number("now", now)
        threshold = now - self.period_s
        return sum(1 for t in self.restarts if t > threshold)

    def exceeded(self, now: float) -> bool:
        """Whether the window ending at ``now`` holds more restarts than allowed."""
        return self.count(now) > self.max_restarts

    def record(self, now: float) -> RestartIntensity:
        """This window with one more restart at ``now``; restarts that aged out are dropped."""
        arguments.number("now", now)
        if self.restarts and now < self.restarts[-1]:
            raise ValueError(
                f"now ({now}) is earlier than the last restart ({self.restarts[-1]}): "
                "pass a monotonic clock"
            )
        threshold = now - self.period_s
        kept = tuple(t for t in self.restarts if t > threshold)
        return replace(self, restarts=(*kept, now))

    def cleared(self) -> RestartIntensity:
        """The same limits with no restarts recorded."""
        return replace(self, restarts=())


@dataclass(frozen=True)
class Backoff:
    """Akka's restartWithBackoff: ``min_s * factor**(attempt-1)``, capped at ``max_s``, jittered.

    ``jitter`` is Akka's randomFactor: the delay grows by up to that fraction, so instances that
    failed together (a provider lost under several of them) do not all hit the market at once.
    The attempt counter restarts after a child ran ``reset_after_s`` without failing; ``None``
    takes Akka's default of ``(min_s + max_s) / 2``. ``min_s = 0`` gives OTP's immediate restarts.
    """

    min_s: float
    max_s: float
    factor: float = 2.0
    jitter: float = 0.2
    reset_after_s: float | None = None

    def __post_init__(self) -> None:
        arguments.number("Backoff.min_s", self.min_s, ge=0)
        arguments.number("Backoff.max_s", self.max_s, ge=self.min_s)
        arguments.number("Backoff.factor", self.factor, ge=1)
        arguments.number("Backoff.jitter", self.jitter, ge=0, le=1)
        arguments.optional_number("Backoff.reset_after_s", self.reset_after_s, gt=0)

    @property
    def effective_reset_after_s(self) -> float:
        """Uptime after which a child's attempt counter starts again from 1."""
        if self.reset_after_s is not None:
            return self.reset_after_s
        return (self.min_s + self.max_s) / 2

    def base_delay(self, attempt: int) -> float:
        """The un-jittered delay before restart number ``attempt`` (1-based)."""
        arguments.whole("attempt", attempt, ge=1)
        if self.min_s == 0:
            return 0.0
        if self.factor == 1:
            return self.min_s
        # Compare exponents rather than computing factor**attempt, which overflows a float
        # long before an attempt counter would stop growing.
        if (attempt - 1) * math.log(self.factor) >= math.log(self.max_s / self.min_s):
            return self.max_s
        return min(self.max_s, self.min_s * self.factor ** (attempt - 1))

    def delay(self, attempt: int, rand: Callable[[], float]) -> float:
        """Seconds to wait before restart number ``attempt``: in ``[min_s, max_s*(1+jitter)]``."""
        r = arguments.number("rand()", rand(), ge=0, le=1)
        return self.base_delay(attempt) * (1 + self.jitter * r)


@dataclass(frozen=True)
class Blacklist:
    """Providers a cluster must not use again for ``ttl_s``: provider id → expiry time.

    A value: ``add`` returns a new blacklist, pruned of expired entries. A provider is blocked
    from the moment it is added until ``ttl_s`` later, and allowed from then on.
    """

    ttl_s: float
    entries: Mapping[str, float] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        arguments.number("Blacklist.ttl_s", self.ttl_s, gt=0)
        # Own a read-only copy: the value must not change under whoever stores it.
        object.__setattr__(self, "entries", MappingProxyType(dict(self.entries)))

    def contains(self, provider: str, now: float) -> bool:
        """Whether ``provider`` is still blacklisted at ``now``."""
        arguments.number("now", now)
        expiry = self.entries.get(provider)
        return expiry is not None and now < expiry

    def active(self, now: float) -> frozenset[str]:
        """Every provider still blacklisted at ``now``."""
        arguments.number("now", now)
        return frozenset(p for p, expiry in self.entries.items() if now < expiry)

    def prune(self, now: float) -> Blacklist:
        """This blacklist without the entries that expired by ``now``."""
        arguments.number("now", now)
        return replace(self, entries={p: e for p, e in self.entries.items() if now < e})

    def add(self, provider: str, now: float) -> Blacklist:
        """Blacklist ``provider`` from ``now`` for ``ttl_s`` (a second failure extends it)."""
        if not provider:
            raise ValueError("provider must be a non-empty provider id")
        arguments.number("now", now)
        entries = {p: e for p, e in self.entries.items() if now < e}
        entries[provider] = max(entries.get(provider, now), now + self.ttl_s)
        return replace(self, entries=entries)


@dataclass(frozen=True)
class SupervisorPolicy:
    """How one cluster (N instances of one service) is supervised.

    The defaults suit Golem rather than OTP's 1 restart in 5 s: a replacement needs a new
    agreement, so a few restarts a minute is normal, and a first restart must be quick (the
    failover target is under a second).
    """

    strategy: Strategy = Strategy.ONE_FOR_ONE
    restart_type: RestartType = RestartType.PERMANENT
    intensity: RestartIntensity = field(
        default_factory=lambda: RestartIntensity(max_restarts=5, period_s=60.0)
    )
    backoff: Backoff = field(default_factory=lambda: Backoff(min_s=0.1, max_s=30.0))
    blacklist_ttl_s: float = 600.0
    service: str = "service"  # names the cluster in escalation reasons and logs

    def __post_init__(self) -> None:
        arguments.number("SupervisorPolicy.blacklist_ttl_s", self.blacklist_ttl_s, gt=0)
        if not self.service:
            raise ValueError("SupervisorPolicy.service must be a non-empty name")

    def initial_state(self, children: Iterable[str] = ()) -> SupervisorState:
        """The state of a fresh cluster with these children, none of them started yet."""
        return SupervisorState(
            intensity=self.intensity.cleared(),
            blacklist=Blacklist(self.blacklist_ttl_s),
            children={child: ChildRecord() for child in children},
        )


@dataclass(frozen=True)
class ChildRecord:
    """One child's backoff bookkeeping: consecutive restarts, and when it last started."""

    attempts: int = 0
    started_at: float | None = None


@dataclass(frozen=True)
class SupervisorState:
    """Everything :func:`decide` remembers between failures; the supervisor stores it."""

    intensity: RestartIntensity
    blacklist: Blacklist
    children: Mapping[str, ChildRecord] = field(default_factory=dict, hash=False)
    escalated: str | None = None  # the escalation reason, once the cluster gave up

    def __post_init__(self) -> None:
        object.__setattr__(self, "children", MappingProxyType(dict(self.children)))

    def child_started(self, child: str, now: float) -> SupervisorState:
        """Note that ``child``'s current incarnation started (runs) at ``now``.

        Its uptime decides whether its next failure starts the backoff from the beginning.
        """
        if not child:
            raise ValueError("child must be a non-empty child id")
        arguments.number("now", now)
        record = self.children.get(child, ChildRecord())
        return replace(self, children={**self.children, child: replace(record, started_at=now)})

    def child_removed(self, child: str) -> SupervisorState:
        """Forget ``child`` (stopped for good, or the cluster was scaled down)."""
        return replace(self, children={c: r for c, r in self.children.items() if c != child})


class Action(enum.Enum):
    """What the supervisor does about an ended child."""

    RESTART = "restart"  # start ``RestartDecision.restart`` again after ``RestartDecision.delay_s``
    STOP_CHILD = "stop_child"  # leave the child stopped; the rest of the cluster carries on
    ESCALATE = "escalate"  # stop the whole cluster and report ``RestartDecision.reason`` upwards


@dataclass(frozen=True)
class RestartDecision:
    """The outcome of one failure, and the state to store for the next one."""

    action: Action
    state: SupervisorState
    restart: frozenset[str] = frozenset()  # the children to start again (RESTART only)
    delay_s: float = 0.0
    blacklisted: frozenset[str] = frozenset()  # providers blacklisted by this decision
    reason: str = ""


def _restarts(restart_type: RestartType, reason: ExitReason) -> bool:
    if restart_type is RestartType.PERMANENT:
        return True
    if restart_type is RestartType.TRANSIENT:
        return reason.abnormal
    return False


def decide(
    policy: SupervisorPolicy,
    state: SupervisorState,
    *,
    child: str,
    reason: ExitReason,
    now: float,
    rand: Callable[[], float],
    provider: str | None = None,
) -> RestartDecision:
    """Decide what happens after ``child`` ended for ``reason`` at ``now``.

    ``provider`` is the provider the child's agreement was with, if it got that far. After an
    abnormal exit that provider is blacklisted for the cluster whatever the action, because we
    cannot tell whose fault a failure was, and moving an instance is cheap. Once a cluster has
    escalated every later decision escalates again: it never restarts anything.
    """
    if not child:
        raise ValueError("child must be a non-empty child id")
    arguments.number("now", now)

    blacklist = state.blacklist.prune(now)
    newly: frozenset[str] = frozenset()
    if provider and reason.abnormal:
        if not blacklist.contains(provider, now):
            newly = frozenset({provider})
        blacklist = blacklist.add(provider, now)
    state = replace(state, blacklist=blacklist)

    if state.escalated is not None:
        return RestartDecision(Action.ESCALATE, state, blacklisted=newly, reason=state.escalated)

    if not _restarts(policy.restart_type, reason):
        why = (
            f"{policy.service}: {child} ended ({reason.value}) and is "
            f"{policy.restart_type.value}: not restarted"
        )
        return RestartDecision(
            Action.STOP_CHILD, state.child_removed(child), blacklisted=newly, reason=why
        )

    intensity = state.intensity.record(now)
    if intensity.exceeded(now):
        why = (
            f"{policy.service}: {intensity.count(now)} restarts within "
            f"{intensity.period_s:g} s exceed the limit of {intensity.max_restarts} "
            f"(last: {child} ended with {reason.value})"
        )
        escalated = replace(state, intensity=intensity, escalated=why)
        return RestartDecision(Action.ESCALATE, escalated, blacklisted=newly, reason=why)

    record = state.children.get(child, ChildRecord())
    stable = (
        record.started_at is not None
        and now - record.started_at >= policy.backoff.effective_reset_after_s
    )
    attempt = 1 if stable else record.attempts + 1
    delay = policy.backoff.delay(attempt, rand)

    if policy.strategy is Strategy.ONE_FOR_ALL:
        targets = frozenset(state.children) | {child}
    else:
        targets = frozenset({child})
    # The whole group restarts together under one_for_all, so it shares one attempt counter.
    children = dict(state.children)
    for target in targets:
        children[target] = ChildRecord(attempts=attempt, started_at=None)
    why = (
        f"{policy.service}: {child} ended ({reason.value}); restart {attempt} "
        f"of {len(targets)} child(ren) in {delay:.3g} s"
    )
    new_state = replace(state, intensity=intensity, children=children)
    return RestartDecision(
        Action.RESTART, new_state, restart=targets, delay_s=delay, blacklisted=newly, reason=why
    )
