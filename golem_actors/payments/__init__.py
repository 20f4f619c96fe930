"""Payments: the run's allocation, debit notes and invoices, accepted within prices and budget.

One concept in one package, read from the bottom up:

- :mod:`.terms`: what an agreement lets a provider charge (pure).
- :mod:`.decisions`: documents in, decisions and totals out (pure data).
- :mod:`.ledger`: the books: which document to accept, and what that commits (pure).
- :mod:`.adoption`: the books taking on what yagna says is ours: a crashed session's
  agreements and documents, an agreement or activity never registered (pure).
- :mod:`.documents`: yagna's documents as the books' inputs, and the events of each step.
- :mod:`.messages`: what the rest of the runtime tells the payment actor.
- :mod:`.checks`: documents of agreements or activities the books do not know: held, then yagna
  asked whether they are ours (an object the actor holds).
- :mod:`.accepts`: sending accepts, and whether one whose answer was lost arrived (an object the
  actor holds).
- :mod:`.actor`: :class:`~golem_actors.payments.actor.PaymentActor`, the one payment actor.

The payment policy is two pure modules rather than one because together they pass 600 lines:
:mod:`.decisions` is what crosses the boundary (documents in, decisions and totals out, read by
the session and the summaries), :mod:`.ledger` the rules that produce it from the books.

This module imports nothing, so importing the pure parts never loads the actor.
"""
