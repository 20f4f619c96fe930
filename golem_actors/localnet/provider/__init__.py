"""localnet's provider agent, one process per provider node (``python -m`` this package).

- ``agent``: ``ProviderAgent`` owns the pieces below and their threads, plus the one-second clock.
- ``market``: the offer, and the answer to each demand.
- ``agreements``: approval, and closing an agreement when it ends.
- ``activities``: activity create/destroy, an exe-unit per activity, state and usage over the bus.
- ``billing``: debit notes, invoices, notes left unaccepted; ``books`` is its pure arithmetic.
- ``shared``: what the pieces share (``Context``, ``Ledger``, ``Status``, ``ExeUnit``).
- ``config``: ``ProviderConfig``, the file a provider process is started with.
"""

from golem_actors.localnet.provider.agent import ProviderAgent, main
from golem_actors.localnet.provider.config import ProviderConfig
from golem_actors.localnet.provider.shared import ExeUnit, ExeUnitFactory

__all__ = ["ExeUnit", "ExeUnitFactory", "ProviderAgent", "ProviderConfig", "main"]
