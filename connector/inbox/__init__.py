"""The user-facing inbox feature: compose, send, drafts, exactly-once sends (over the gate)."""
