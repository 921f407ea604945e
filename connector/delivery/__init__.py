"""Delivery of each account's change feed to the platform as signed webhooks.

The feed (`accounts_change`, written in the same transaction as the history cursor) is the
transactional outbox; this package keeps a per-account delivery cursor beside it, signs each
change with the Standard Webhooks reference library, decides and records every POST as a
TRANSFER before it is made, retries with backoff and dead-letters after a horizon.
"""
