"""The live mailbox: Gmail push through Pub/Sub, the polling fallback, watch upkeep, leases.

Background work of `connector serve`: every Gmail call still goes through the gate (as the
connector, for the owner's feature) and every change lands in the per-account feed that
`connector.accounts.sync_store` keeps; this package only decides *when* an account is synced.
"""
