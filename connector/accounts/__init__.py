"""Linked Gmail accounts: scopes per feature, the accounts tables, linking, unlinking.

Submodules are imported directly (`connector.accounts.store`, ...) so that importing the
token source (`connector.accounts.credentials`) does not pull in SQLModel or the link flow.
"""
