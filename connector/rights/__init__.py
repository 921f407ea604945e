"""Data rights and retention over what the connector holds: retention runs (SYSTEM, audited),
their single-instance background loop, and the `connector retention` command."""
