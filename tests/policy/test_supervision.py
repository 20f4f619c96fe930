"""Restart decisions: the OTP matrix, intensity and escalation, backoff, the provider blacklist."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from golem_actors.policy.supervision import (
    Action,
    Backoff,
    Blacklist,
    ChildRecord,
    ExitReason,
    RestartDecision,
    RestartIntensity,
    RestartType,
    Strategy,
    SupervisorPolicy,
    SupervisorState,
    decide,
)

CHILDREN = ("a", "b", "c")
NORMAL = {ExitReason.NORMAL, ExitReason.SHUTDOWN}


def zero() -> float:
    return 0.0


def one() -> float:
    return 1.0


def policy(**kwargs: object) -> SupervisorPolicy:
    defaults: dict[str, object] = {
        "intensity": RestartIntensity(max_restarts=3, period_s=10.0),
        "backoff": Backoff(min_s=1.0, max_s=8.0, jitter=0.5),
        "blacklist_ttl_s": 100.0,
        "service": "kv-store",
    }
    defaults.update(kwargs)
    return SupervisorPolicy(**defaults)  # type: ignore[arg-type]


def running(p: SupervisorPolicy, now: float = 0.0) -> SupervisorState:
    state = p.initial_state(CHILDREN)
    for child in CHILDREN:
        state = state.child_started(child, now)
    return state


def fail(
    p: SupervisorPolicy,
    state: SupervisorState,
    *,
    child: str = "b",
    reason: ExitReason = ExitReason.RUN_FAILED,
    now: float = 1.0,
    provider: str | None = None,
) -> RestartDecision:
    return decide(p, state, child=child, reason=reason, now=now, rand=zero, provider=provider)


# -- exit reasons ------------------------------------------------------------------------------


def test_exit_reasons_are_a_small_closed_set() -> None:
    assert len(ExitReason) == 10
    assert {r for r in ExitReason if not r.abnormal} == NORMAL


# -- the OTP matrix ----------------------------------------------------------------------------

# (restart type, abnormal exit) -> restarted?  OTP's supervisor, sup_princ.md.
RESTARTED = {
    (RestartType.PERMANENT, False): True,
    (RestartType.PERMANENT, True): True,
    (RestartType.TRANSIENT, False): False,
    (RestartType.TRANSIENT, True): True,
    (RestartType.TEMPORARY, False): False,
    (RestartType.TEMPORARY, True): False,
}


@pytest.mark.parametrize(
    ("strategy", "restart_type", "reason"),
    list(itertools.product(Strategy, RestartType, ExitReason)),
)
def test_otp_matrix(strategy: Strategy, restart_type: RestartType, reason: ExitReason) -> None:
    p = policy(strategy=strategy, restart_type=restart_type)
    state = running(p)
    decision = fail(p, state, reason=reason, provider="node-b")
    abnormal = reason not in NORMAL

    if RESTARTED[restart_type, abnormal]:
        assert decision.action is Action.RESTART
        expected = set(CHILDREN) if strategy is Strategy.ONE_FOR_ALL else {"b"}
        assert decision.restart == expected
        assert decision.delay_s == 1.0  # first attempt, rand = 0
        assert decision.state.intensity.count(1.0) == 1
    else:
        assert decision.action is Action.STOP_CHILD
        assert decision.restart == frozenset()
        assert "b" not in decision.state.children  # forgotten; siblings untouched
        assert set(decision.state.children) == {"a", "c"}
        assert decision.state.intensity.count(1.0) == 0  # not a restart, not counted

    # The provider under an abnormal exit is blacklisted whatever happens to the child.
    assert decision.blacklisted == ({"node-b"} if abnormal else set())
    assert decision.state.blacklist.contains("node-b", 1.0) is abnormal


def test_decide_leaves_the_old_state_untouched() -> None:
    p = policy()
    state = running(p)
    before = (state.intensity, dict(state.children), state.blacklist)
    decision = fail(p, state, provider="node-b")
    assert decision.state != state
    assert (state.intensity, dict(state.children), state.blacklist) == before


def test_no_provider_no_blacklist() -> None:
    decision = fail(policy(), running(policy()), provider=None)
    assert decision.blacklisted == frozenset()
    assert decision.state.blacklist.active(1.0) == frozenset()


def test_an_already_blacklisted_provider_is_not_reported_again_but_extended() -> None:
    p = policy()
    first = fail(p, running(p), child="a", now=1.0, provider="node-x")
    second = fail(p, first.state, child="b", now=50.0, provider="node-x")
    assert first.blacklisted == {"node-x"}
    assert second.blacklisted == frozenset()
    assert second.state.blacklist.contains("node-x", 149.0)  # 50 + 100 s, not 1 + 100 s
    assert not second.state.blacklist.contains("node-x", 150.0)


# -- intensity and escalation ------------------------------------------------------------------


def test_otp_default_one_restart_in_five_seconds() -> None:
    p = policy(intensity=RestartIntensity(max_restarts=1, period_s=5.0))
    first = fail(p, running(p), now=1.0)
    assert first.action is Action.RESTART
    second = fail(p, first.state, child="a", now=5.9)
    assert second.action is Action.ESCALATE
    assert second.restart == frozenset()
    assert "kv-store" in second.reason
    assert "2 restarts within 5 s" in second.reason
    assert "limit of 1" in second.reason
    assert second.state.escalated == second.reason


def test_a_restart_exactly_one_period_ago_has_left_the_window() -> None:
    p = policy(intensity=RestartIntensity(max_restarts=1, period_s=5.0))
    first = fail(p, running(p), now=1.0)
    second = fail(p, first.state, now=6.0)
    assert second.action is Action.RESTART
    assert second.state.intensity.restarts == (6.0,)  # the old one was pruned


def test_the_window_is_half_open() -> None:
    intensity = RestartIntensity(max_restarts=1, period_s=5.0).record(1.0).record(2.0)
    assert intensity.count(5.9) == 2
    assert intensity.exceeded(5.9)
    assert intensity.count(6.0) == 1  # (now - period, now]: the restart at 1.0 left at 6.0
    assert not intensity.exceeded(6.0)
    assert intensity.count(7.0) == 0


def test_zero_restarts_allowed_escalates_at_once() -> None:
    p = policy(intensity=RestartIntensity(max_restarts=0, period_s=5.0))
    assert fail(p, running(p)).action is Action.ESCALATE


def test_temporary_children_never_count_towards_escalation() -> None:
    p = policy(
        restart_type=RestartType.TEMPORARY,
        intensity=RestartIntensity(max_restarts=0, period_s=5.0),
    )
    assert fail(p, running(p)).action is Action.STOP_CHILD


def test_once_escalated_always_escalated() -> None:
    p = policy(intensity=RestartIntensity(max_restarts=0, period_s=5.0))
    escalated = fail(p, running(p), now=1.0)
    for reason in ExitReason:
        later = fail(p, escalated.state, child="c", reason=reason, now=1000.0, provider="node-c")
        assert later.action is Action.ESCALATE
        assert later.reason == escalated.reason
    # ...and it still blacklists the provider of an abnormal exit.
    assert fail(p, escalated.state, now=2.0, provider="node-z").blacklisted == {"node-z"}


def test_intensity_rejects_time_going_backwards() -> None:
    intensity = RestartIntensity(2, 10.0).record(5.0)
    with pytest.raises(ValueError, match="monotonic"):
        intensity.record(4.0)


# -- backoff -----------------------------------------------------------------------------------


def test_backoff_matches_akka_example() -> None:
    # Akka's docs: min 3 s, max 30 s gives 3, 6, 12, 24, 30, 30 ...
    backoff = Backoff(min_s=3.0, max_s=30.0, jitter=0.2)
    assert [backoff.delay(n, zero) for n in range(1, 7)] == [3, 6, 12, 24, 30, 30]
    assert backoff.delay(1, one) == pytest.approx(3.6)
    assert backoff.delay(5, one) == pytest.approx(36.0)
    assert backoff.effective_reset_after_s == 16.5  # Akka's default: (min + max) / 2


def test_backoff_huge_attempts_do_not_overflow() -> None:
    assert Backoff(min_s=0.1, max_s=60.0, factor=10.0).delay(10**9, zero) == 60.0


def test_backoff_min_zero_means_immediate_restarts() -> None:
    assert Backoff(min_s=0.0, max_s=0.0).delay(50, one) == 0.0


def test_backoff_grows_per_child_and_resets_after_a_stable_run() -> None:
    p = policy(backoff=Backoff(min_s=1.0, max_s=8.0, jitter=0.0, reset_after_s=30.0))
    state = running(p)
    delays = []
    now = started = 100.0
    for _ in range(4):
        decision = fail(p, state, now=now)
        delays.append(decision.delay_s)
        started = now + 1.0
        state = decision.state.child_started("b", started)
        now += 5.0  # each incarnation runs 4 s: not stable
    assert delays == [1.0, 2.0, 4.0, 8.0]
    # Other children keep their own counters under one_for_one.
    assert fail(p, state, child="a", now=now).delay_s == 1.0
    # 30 s of uptime resets the counter; 29.9 s does not.
    assert fail(p, state, now=started + 29.9).delay_s == 8.0
    assert fail(p, state, now=started + 30.0).delay_s == 1.0


def test_a_child_that_never_got_running_keeps_backing_off() -> None:
    p = policy(backoff=Backoff(min_s=1.0, max_s=8.0, jitter=0.0, reset_after_s=1.0))
    state = p.initial_state(["b"])
    delays = []
    for now in (10.0, 100.0, 1000.0):  # long gaps, but child_started never came
        decision = fail(p, state, reason=ExitReason.AGREEMENT_FAILED, now=now)
        delays.append(decision.delay_s)
        state = decision.state
    assert delays == [1.0, 2.0, 4.0]


def test_one_for_all_shares_one_attempt_counter() -> None:
    p = policy(strategy=Strategy.ONE_FOR_ALL, backoff=Backoff(1.0, 8.0, jitter=0.0))
    first = fail(p, running(p), child="a", now=1.0)
    second = fail(p, first.state, child="c", now=2.0)
    assert (first.delay_s, second.delay_s) == (1.0, 2.0)
    assert second.restart == set(CHILDREN)
    assert all(r == ChildRecord(attempts=2) for r in second.state.children.values())


def test_rand_out_of_range_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"rand\(\)"):
        Backoff(1.0, 2.0).delay(1, lambda: 1.5)


# -- blacklist ---------------------------------------------------------------------------------


def test_blacklist_blocks_for_exactly_its_ttl_and_prunes() -> None:
    blacklist = Blacklist(ttl_s=10.0).add("p1", 0.0).add("p2", 5.0)
    assert blacklist.active(9.999) == {"p1", "p2"}
    assert blacklist.active(10.0) == {"p2"}
    assert not blacklist.contains("p1", 10.0)
    assert blacklist.contains("p2", 14.9)
    pruned = blacklist.add("p3", 12.0)
    assert set(pruned.entries) == {"p2", "p3"}
    assert blacklist.prune(15.0).entries == {}
    assert not blacklist.contains("never-seen", 0.0)


def test_blacklist_cannot_be_mutated_through_its_entries() -> None:
    blacklist = Blacklist(ttl_s=10.0).add("p1", 0.0)
    with pytest.raises(TypeError):
        blacklist.entries["p2"] = 99.0  # type: ignore[index]


# -- bad input names the field -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: RestartIntensity(-1, 5.0), "max_restarts"),
        (lambda: RestartIntensity(1, 0.0), "period_s"),
        (lambda: RestartIntensity(1, math.inf), "period_s"),
        (lambda: RestartIntensity(1, 5.0, (3.0, 1.0)), "restarts"),
        (lambda: Backoff(-1.0, 5.0), "min_s"),
        (lambda: Backoff(2.0, 1.0), "max_s"),
        (lambda: Backoff(1.0, 2.0, factor=0.5), "factor"),
        (lambda: Backoff(1.0, 2.0, jitter=1.5), "jitter"),
        (lambda: Backoff(1.0, 2.0, reset_after_s=0.0), "reset_after_s"),
        (lambda: Backoff(1.0, 2.0).delay(0, zero), "attempt"),
        (lambda: Blacklist(0.0), "ttl_s"),
        (lambda: Blacklist(1.0).add("", 0.0), "provider"),
        (lambda: Blacklist(1.0).contains("p", math.nan), "now"),
        (lambda: SupervisorPolicy(blacklist_ttl_s=-1.0), "blacklist_ttl_s"),
        (lambda: SupervisorPolicy(service=""), "service"),
        (lambda: fail(policy(), running(policy()), child=""), "child"),
        (lambda: fail(policy(), running(policy()), now=math.nan), "now"),
        (lambda: running(policy()).child_started("", 0.0), "child"),
    ],
)
def test_bad_input_names_the_field(build: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        build()  # type: ignore[operator]


# -- properties --------------------------------------------------------------------------------

backoffs = st.builds(
    Backoff,
    min_s=st.floats(min_value=0.001, max_value=10),
    max_s=st.floats(min_value=10, max_value=600),
    factor=st.floats(min_value=1, max_value=10),
    jitter=st.floats(min_value=0, max_value=1),
)
unit = st.floats(min_value=0, max_value=1)


@given(backoffs, st.integers(min_value=1, max_value=10_000), unit)
def test_backoff_stays_within_bounds(backoff: Backoff, attempt: int, r: float) -> None:
    delay = backoff.delay(attempt, lambda: r)
    assert backoff.min_s <= delay <= backoff.max_s * (1 + backoff.jitter)


@given(backoffs, unit)
def test_backoff_never_decreases_and_grows_by_factor_before_the_cap(
    backoff: Backoff, r: float
) -> None:
    delays = [backoff.delay(n, lambda: r) for n in range(1, 60)]
    assert delays == sorted(delays)
    bases = [backoff.base_delay(n) for n in range(1, 60)]
    for before, after in itertools.pairwise(bases):
        if after < backoff.max_s:
            assert after == pytest.approx(before * backoff.factor)
    # ...and it does reach the cap, for any factor that grows in practice (1 + 2**-52 cannot
    # reach a cap 10x away within 10**9 attempts).
    assert backoff.base_delay(10**9) == backoff.max_s or backoff.factor < 1.001


@given(
    ttl=st.floats(min_value=0.5, max_value=100),
    ops=st.lists(
        st.tuples(
            st.booleans(),  # add (True) or check (False)
            st.sampled_from(["p1", "p2", "p3"]),
            st.floats(min_value=0, max_value=50),  # time passing before the op
        ),
        max_size=40,
    ),
)
def test_blacklist_matches_its_model(ttl: float, ops: list[tuple[bool, str, float]]) -> None:
    blacklist = Blacklist(ttl_s=ttl)
    last_added: dict[str, float] = {}
    now = 0.0
    for add, provider, dt in ops:
        now += dt
        if add:
            blacklist = blacklist.add(provider, now)
            last_added[provider] = now
            assert all(expiry > now for expiry in blacklist.entries.values())  # pruned
        expected = {p for p, t in last_added.items() if now < t + ttl}
        assert blacklist.active(now) == expected
        assert blacklist.contains(provider, now) is (provider in expected)


@given(
    ttl=st.floats(min_value=0.5, max_value=1000),
    at=st.floats(min_value=0, max_value=1e6),
    offset=st.floats(min_value=0, max_value=1),
)
def test_a_failed_provider_is_never_allowed_within_its_ttl(
    ttl: float, at: float, offset: float
) -> None:
    p = policy(blacklist_ttl_s=ttl)
    decision = fail(p, running(p), now=at, provider="bad")
    blacklist = decision.state.blacklist
    assert decision.blacklisted == {"bad"}
    within = at + offset * ttl
    if within < at + ttl:
        assert blacklist.contains("bad", within)
    assert not blacklist.contains("bad", at + ttl)
    assert not blacklist.contains("bad", at + ttl + offset)


@given(
    max_r=st.integers(min_value=0, max_value=6),
    period=st.floats(min_value=0.5, max_value=30),
    gaps=st.lists(st.floats(min_value=0, max_value=10), min_size=1, max_size=30),
)
def test_escalation_exactly_when_the_window_overflows(
    max_r: int, period: float, gaps: list[float]
) -> None:
    p = policy(intensity=RestartIntensity(max_restarts=max_r, period_s=period))
    state = running(p)
    times = list(itertools.accumulate(gaps))
    expected = next(
        (
            i
            for i, t in enumerate(times)
            if sum(1 for s in times[: i + 1] if s > t - period) > max_r
        ),
        None,
    )
    actions = []
    for t in times:
        decision = fail(p, state, now=t)
        actions.append(decision.action)
        state = decision.state
    if expected is None:
        assert actions == [Action.RESTART] * len(times)
    else:
        assert actions[:expected] == [Action.RESTART] * expected
        assert set(actions[expected:]) == {Action.ESCALATE}


class IntensityMachine(RuleBasedStateMachine):
    """Random failures over random time: restarts never exceed the window without escalation."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.restarts: list[float] = []  # the model: when restarts were granted
        self.escalated = False

    @initialize(
        max_r=st.integers(min_value=0, max_value=5),
        period=st.floats(min_value=0.5, max_value=20),
        restart_type=st.sampled_from([RestartType.PERMANENT, RestartType.TRANSIENT]),
        strategy=st.sampled_from(Strategy),
    )
    def setup(
        self, max_r: int, period: float, restart_type: RestartType, strategy: Strategy
    ) -> None:
        self.policy = policy(
            intensity=RestartIntensity(max_restarts=max_r, period_s=period),
            restart_type=restart_type,
            strategy=strategy,
        )
        self.state = running(self.policy)

    def in_window(self) -> int:
        period = self.policy.intensity.period_s
        return sum(1 for t in self.restarts if t > self.now - period)

    @rule(dt=st.floats(min_value=0, max_value=10))
    def time_passes(self, dt: float) -> None:
        self.now += dt

    @rule(
        child=st.sampled_from(CHILDREN),
        reason=st.sampled_from(ExitReason),
        provider=st.sampled_from([None, "p1", "p2"]),
    )
    def child_fails(self, child: str, reason: ExitReason, provider: str | None) -> None:
        decision = decide(
            self.policy,
            self.state,
            child=child,
            reason=reason,
            now=self.now,
            rand=zero,
            provider=provider,
        )
        self.state = decision.state
        restarted_by_type = (
            self.policy.restart_type is RestartType.PERMANENT or reason not in NORMAL
        )
        if self.escalated:
            assert decision.action is Action.ESCALATE
        elif not restarted_by_type:
            assert decision.action is Action.STOP_CHILD
        else:
            would_exceed = self.in_window() + 1 > self.policy.intensity.max_restarts
            assert (decision.action is Action.ESCALATE) is would_exceed
            if would_exceed:
                self.escalated = True
                assert f"{self.in_window() + 1} restarts within" in decision.reason
                assert self.policy.service in decision.reason
            else:
                self.restarts.append(self.now)
                assert child in decision.restart
                assert decision.delay_s >= self.policy.backoff.min_s
                self.state = self.state.child_started(child, self.now)
        if provider is not None and reason not in NORMAL:
            assert self.state.blacklist.contains(provider, self.now)

    @invariant()
    def window_never_exceeded(self) -> None:
        if hasattr(self, "policy") and not self.escalated:
            assert self.in_window() <= self.policy.intensity.max_restarts
            assert self.state.intensity.count(self.now) == self.in_window()

    @precondition(lambda self: hasattr(self, "policy"))
    @invariant()
    def escalation_is_recorded(self) -> None:
        assert (self.state.escalated is not None) is self.escalated


TestIntensityMachine = IntensityMachine.TestCase
TestIntensityMachine.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
