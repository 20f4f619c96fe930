"""The service lifecycle: exactly the legal moves pass, every other one fails naming both ends."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from golem_actors.policy.lifecycle import ALLOWED, InvalidTransition, ServiceState, transition

S = ServiceState

# Written out edge by edge, independently of ALLOWED, so a change to the table must be deliberate.
LEGAL = {
    (S.PENDING, S.STARTING),
    (S.PENDING, S.STOPPING),
    (S.PENDING, S.FAILED),
    (S.STARTING, S.RUNNING),
    (S.STARTING, S.STOPPING),
    (S.STARTING, S.FAILED),
    (S.RUNNING, S.UNRESPONSIVE),
    (S.RUNNING, S.STOPPING),
    (S.RUNNING, S.FAILED),
    (S.UNRESPONSIVE, S.RUNNING),
    (S.UNRESPONSIVE, S.STOPPING),
    (S.UNRESPONSIVE, S.FAILED),
    (S.STOPPING, S.TERMINATED),
    (S.STOPPING, S.FAILED),
}


@pytest.mark.parametrize(("source", "target"), list(itertools.product(S, S)))
def test_exactly_the_legal_moves_are_allowed(source: S, target: S) -> None:
    if (source, target) in LEGAL:
        assert transition(source, target) is target
    else:
        with pytest.raises(InvalidTransition) as info:
            transition(source, target)
        assert info.value.source is source
        assert info.value.target is target
        assert f"{source.value} -> {target.value}" in str(info.value)


def test_the_table_matches_the_written_edges() -> None:
    assert {(a, b) for a, targets in ALLOWED.items() for b in targets} == LEGAL
    assert set(ALLOWED) == set(S)


def test_invalid_transition_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="terminated -> running"):
        transition(S.TERMINATED, S.RUNNING)


@pytest.mark.parametrize("state", [S.TERMINATED, S.FAILED])
def test_final_states_have_no_way_out(state: S) -> None:
    assert state.final
    assert not state.live
    for target in S:
        with pytest.raises(InvalidTransition, match=r"nothing \(final\)"):
            transition(state, target)


@pytest.mark.parametrize("state", [s for s in S if s not in {S.TERMINATED, S.FAILED}])
def test_every_live_state_can_fail(state: S) -> None:
    assert state.live
    assert transition(state, S.FAILED) is S.FAILED
    if state is not S.STOPPING:
        assert transition(state, S.STOPPING) is S.STOPPING


def test_the_happy_path_and_a_health_blip() -> None:
    path = [S.PENDING, S.STARTING, S.RUNNING, S.UNRESPONSIVE, S.RUNNING, S.STOPPING, S.TERMINATED]
    state = path[0]
    for target in path[1:]:
        state = transition(state, target)
    assert state is S.TERMINATED


def test_no_self_transitions() -> None:
    for state in S:
        with pytest.raises(InvalidTransition):
            transition(state, state)


@given(st.lists(st.integers(min_value=0, max_value=10), max_size=30))
def test_every_walk_can_still_end(choices: list[int]) -> None:
    # Whatever legal moves were taken, the instance never gets stuck in a live state.
    state = S.PENDING
    for choice in choices:
        targets = sorted(ALLOWED[state], key=lambda s: s.value)
        if not targets:
            break
        state = transition(state, targets[choice % len(targets)])
    assert state.final or S.FAILED in ALLOWED[state]
