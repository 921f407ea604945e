"""The assessors' evidence pack (`connector evidence`): scopes, rules, accesses, the verified
chain, token protection, the threat model and the controls, signed and checkable against the log."""
