"""Pure policy: demands, offers, prices, negotiation, restarts, lifecycles and journal records.

The payment policy (agreed terms, decisions, the ledger) lives in :mod:`golem_actors.payments`.
"""
