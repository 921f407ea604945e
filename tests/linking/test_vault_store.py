"""Vault-backed credentials: refresh over the database, needs-relink, key rotation, CLI."""

from __future__ import annotations

import asyncio
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from audit.vocab import Action
from connector.accounts import vault_cli
from connector.accounts.credential_store import VaultCredentialStore
from connector.accounts.models import AccountStatus
from connector.accounts.rotation import key_usage, rotate
from connector.accounts.store import AccountStore
from connector.accounts.vault import FileKeyProvider, KeyRing, SecretKind, Vault, generate_key_entry
from connector.errors import AccountNotLinkedError, NeedsRelinkError, VaultError
from connector.settings import Settings
from tests.linking.conftest import HASH_KEY, actions, link_account, refresh_calls, vault_keys


def test_seal_open_round_trip_and_binding():
    """Sealed values open only for the same owner and kind; nonces differ per seal."""
    vault = Vault(KeyRing.parse(vault_keys("k1"), source="t"))
    a = vault.seal("1//secret", owner_id="acct1", kind=SecretKind.REFRESH_TOKEN)
    b = vault.seal("1//secret", owner_id="acct1", kind=SecretKind.REFRESH_TOKEN)
    assert a != b
    assert a.startswith("k1$")
    assert "secret" not in a
    assert vault.open(a, owner_id="acct1", kind=SecretKind.REFRESH_TOKEN) == "1//secret"
    with pytest.raises(VaultError, match="failed authentication"):
        vault.open(a, owner_id="acct2", kind=SecretKind.REFRESH_TOKEN)
    with pytest.raises(VaultError, match="failed authentication"):
        vault.open(a, owner_id="acct1", kind=SecretKind.ACCESS_TOKEN)
    assert "k1" in repr(vault)


def test_relabelled_key_id_fails():
    """A ciphertext relabelled with another key id fails instead of decrypting."""
    ring = KeyRing.parse(vault_keys("k2", "k1"), source="t")
    vault = Vault(ring)
    sealed = vault.seal("x", owner_id="a", kind=SecretKind.EMAIL)
    relabelled = "k1$" + sealed.split("$", 1)[1]
    with pytest.raises(VaultError):
        vault.open(relabelled, owner_id="a", kind=SecretKind.EMAIL)


def test_key_ring_parse_errors_name_the_problem():
    """Bad key material is refused with a message naming the source and key."""
    with pytest.raises(VaultError, match="32 bytes"):
        KeyRing.parse("k1:AAAA", source="CONNECTOR_VAULT_KEYS")
    entry = generate_key_entry("k1")
    with pytest.raises(VaultError, match="appears twice"):
        KeyRing.parse(f"{entry},{entry}", source="x")
    with pytest.raises(VaultError, match="no vault keys"):
        KeyRing.parse("", source="x")


def test_key_file_must_be_private(tmp_path):
    """A key file readable by group or others is refused."""
    path = tmp_path / "keys"
    path.write_text(generate_key_entry("k1"))
    path.chmod(0o644)
    with pytest.raises(VaultError, match="chmod 600"):
        FileKeyProvider(path).load()
    path.chmod(0o600)
    assert FileKeyProvider(path).load().current == "k1"


async def test_revoked_grant_needs_relink_over_database(linking):
    """Revoked at the emulator: next refresh marks needs_relink, audits, raises."""
    w = linking
    account = await link_account(w)
    w.emu.revoke_user(w.emu.users[0])
    source = w.token_source()
    with pytest.raises(NeedsRelinkError):
        await source.access_token(account.id, force_refresh=True)
    stored = await w.accounts.get(account.id)
    assert stored.status is AccountStatus.NEEDS_RELINK
    assert stored.status_reason == "invalid_grant"
    assert actions(w.audit)[-2:] == [Action.ACCOUNT_REFRESH_FAILED, Action.ACCOUNT_NEEDS_RELINK]
    with pytest.raises(NeedsRelinkError):
        await source.access_token(account.id)
    assert source.refresh_count == 1


async def test_concurrent_refresh_over_database_one_call(linking):
    """Concurrent callers of an expired token in the database cause one refresh."""
    w = linking
    account = await link_account(w)
    w.emu.expire_access_tokens()
    async with w.engine.begin() as conn:
        await conn.execute(
            text("UPDATE accounts_account SET access_expiry = :t"),
            {"t": datetime.now(UTC) - timedelta(seconds=1)},
        )
    source = w.token_source()
    before = refresh_calls(w.emu)
    tokens = await asyncio.gather(*(source.access_token(account.id) for _ in range(15)))
    assert refresh_calls(w.emu) - before == 1
    assert len({t.token for t in tokens}) == 1
    assert (await w.credentials.load(account.id)).access_token == tokens[0].token


async def test_owners_and_credentials_asked_at_once_are_read_in_one_statement(linking):
    """Every Gmail call and delivery asks for an account's owner and credentials: those asked
    for together are one read each, and each caller gets its own account's answer."""
    w = linking
    first = await link_account(w, user_id="user-1", login=w.emu.users[0])
    second = await link_account(w, user_id="user-2", login=w.emu.users[1])
    ids = [first.id, second.id, "no-such-account", first.id]
    reads = w.accounts._owners.batches
    owners = await asyncio.gather(*(w.accounts.owner_of(a) for a in ids))
    assert owners == ["user-1", "user-2", None, "user-1"]
    assert w.accounts._owners.batches == reads + 1
    expected = {a: await w.credentials.load(a) for a in (first.id, second.id)}
    assert expected[first.id].refresh_token != expected[second.id].refresh_token
    reads = w.credentials._rows.batches
    loaded = await asyncio.gather(*(w.credentials.load(a) for a in ids), return_exceptions=True)
    assert w.credentials._rows.batches == reads + 1
    assert loaded[0] == loaded[3] == expected[first.id]
    assert loaded[1] == expected[second.id]
    assert isinstance(loaded[2], AccountNotLinkedError)


async def test_rotation_keeps_old_ciphertexts_readable(linking):
    """A new current key reads old values; rotate re-seals all; the old key can then go."""
    w = linking
    account = await link_account(w)
    creds = await w.credentials.load(account.id)
    new_entry = generate_key_entry("k2")
    new_vault = Vault(KeyRing.parse(f"{new_entry},{w.keys}", source="t"))
    new_store = VaultCredentialStore(w.engine, new_vault)
    assert await new_store.load(account.id) == creds  # old ciphertexts still readable
    assert await key_usage(w.engine, new_vault) == {"k1": 3}

    report = await rotate(w.engine, new_vault, w.authority())

    assert report.resealed == 3
    assert report.by_key_before == {"k1": 3}
    assert await key_usage(w.engine, new_vault) == {"k2": 3}
    assert actions(w.audit)[-1] is Action.VAULT_KEY_ROTATED
    only_new = Vault(KeyRing.parse(new_entry, source="t"))
    assert await VaultCredentialStore(w.engine, only_new).load(account.id) == creds
    accounts = AccountStore(w.engine, only_new, hash_key=HASH_KEY)
    assert (await accounts.get(account.id)).email == w.emu.users[0]
    with pytest.raises(VaultError, match="not in the key ring"):
        await VaultCredentialStore(w.engine, w.vault).load(account.id)


def test_cli_generate_key_prepends_private_file(tmp_path, capsys):
    """generate-key adds a new current key to a 0600 file, keeping the old one."""
    path = tmp_path / "vault.keys"
    parser = _parser()
    assert vault_cli.run(parser.parse_args(["generate-key", "--key-id", "k1",
                                            "--key-file", str(path)])) == 0  # fmt: skip
    assert vault_cli.run(parser.parse_args(["generate-key", "--key-id", "k2",
                                            "--key-file", str(path)])) == 0  # fmt: skip
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    ring = FileKeyProvider(path).load()
    assert ring.current == "k2"
    assert set(ring.keys) == {"k1", "k2"}
    assert vault_cli.run(parser.parse_args(["generate-key", "--key-id", "k2",
                                            "--key-file", str(path)])) == 2  # fmt: skip
    assert "already holds" in capsys.readouterr().err


async def test_cli_rotate_refuses_wrong_current_key(tmp_path, monkeypatch, capsys):
    """rotate --new-key-id refuses when that key is not first in the ring."""
    monkeypatch.setenv("CONNECTOR_VAULT_KEYS", vault_keys("k1", "k2"))
    args = _parser().parse_args(["rotate", "--new-key-id", "k2", "--db",
                                 f"sqlite:///{tmp_path / 'x.db'}"])  # fmt: skip
    assert await asyncio.to_thread(vault_cli.run, args) == 2
    assert "put the new key first" in capsys.readouterr().err


async def test_cli_rotate_reseals_database(sqlite_linking, tmp_path, monkeypatch, capsys):
    """The rotate command re-encrypts the database under the new key and audits it."""
    w = sqlite_linking
    await link_account(w)
    monkeypatch.setenv("CONNECTOR_VAULT_KEYS", f"{generate_key_entry('k2')},{w.keys}")
    audit_url = f"sqlite:///{tmp_path / 'audit.db'}"
    args = _parser().parse_args(["rotate", "--new-key-id", "k2", "--db", w.url,
                                 "--audit-db", audit_url])  # fmt: skip
    assert await asyncio.to_thread(vault_cli.run, args) == 0
    assert '"resealed": 3' in capsys.readouterr().out
    new_vault = Vault.from_settings(Settings.from_env())
    assert await key_usage(w.engine, new_vault) == {"k2": 3}


def _parser():
    import argparse

    parser = argparse.ArgumentParser()
    vault_cli.add_arguments(parser)
    return parser
