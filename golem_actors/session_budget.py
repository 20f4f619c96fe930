"""A ``Golem`` session's budget: checked when the session is made, reserved in yagna (an
allocation) when it starts, released when it stops.

A resumed run (its journal holds an allocation) keeps that allocation if yagna still has it;
otherwise it reserves what is left of the budget after what the crashed session spent, so a run
never spends more than its budget however often it is resumed.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal, InvalidOperation

from golem_actors.errors import GolemActorsError
from golem_actors.journal import Journal
from golem_actors.payments.adoption import Recovered, spent_before
from golem_actors.yagna import YagnaClient, YagnaError
from golem_actors.yagna.models import Allocation

__all__ = ["BudgetSpentError", "parse_budget", "release_budget", "reserve_budget"]

log = logging.getLogger(__name__)


class BudgetSpentError(GolemActorsError, ValueError):
    """A resumed run already spent its whole budget: nothing is left to reserve."""


def parse_budget(value: Decimal | str | float) -> Decimal:
    """The budget in GLM; a ``ValueError`` names a bad one."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"budget must be a number of GLM, got {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"budget must be a positive number of GLM, got {value!r}")
    return amount


def reserve_budget(  # noqa: PLR0917 - the session's settings, each named at the one call
    client: YagnaClient,
    journal: Journal | None,
    budget: Decimal,
    recovered: Recovered | None,
    payment_platform: str,
    expiration: dt.timedelta,
) -> Allocation:
    """The run's budget in yagna: the journaled allocation if it still exists, else a new
    one for what is left of the budget after what the crashed session spent."""
    if journal is not None and journal.state.allocation_id is not None:
        try:
            return client.payment.get_allocation(journal.state.allocation_id)
        except YagnaError as exc:
            log.info("the run's allocation is gone (%s): reserving a new one", exc)
    left = budget
    if recovered is not None:
        left -= spent_before(recovered)
        if left <= 0:
            raise BudgetSpentError(f"the run already spent its whole budget of {budget} GLM")
    timeout = dt.datetime.now(dt.UTC) + expiration + dt.timedelta(hours=1)
    allocation = client.payment.create_allocation(
        left, payment_platform=payment_platform, timeout=timeout
    )
    if journal is not None:
        journal.allocation(allocation.allocation_id, left)
    return allocation


def release_budget(client: YagnaClient, allocation: Allocation | None) -> Allocation | None:
    """Release the session's allocation; returns it as yagna last saw it (what was spent, for
    the summary), or None when yagna could not be asked."""
    if allocation is None:
        return None
    final = None
    try:
        final = client.payment.get_allocation(allocation.allocation_id)
        client.payment.release_allocation(allocation.allocation_id)
    except YagnaError as exc:
        log.warning("releasing the allocation: %s", exc)
    return final
