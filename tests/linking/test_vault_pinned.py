"""The vault pinned: key-ring parsing, the sealed format, its associated data, every refusal.

Each refusal starts from something that works (a valid ring, a value that opens) and changes one
thing; the sealed format is checked by decrypting with AES-GCM directly, so the layout
(`kid$base64url(nonce || ciphertext || tag)`) and the associated data cannot drift unnoticed.
"""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connector.accounts.vault import (
    AAD_PREFIX,
    KEY_BYTES,
    NONCE_BYTES,
    EnvKeyProvider,
    FileKeyProvider,
    KeyRing,
    SecretKind,
    Vault,
    generate_key_entry,
    key_provider_from_settings,
)
from connector.errors import VaultError

K1, K2 = bytes(range(32)), bytes(range(1, 33))
B1, B2 = base64.b64encode(K1).decode(), base64.b64encode(K2).decode()
RING = KeyRing("k2", {"k2": K2, "k1": K1})
VAULT = Vault(RING)
OLD = Vault(KeyRing("k1", {"k1": K1}))


def aad(owner: str, kind: str, kid: str) -> bytes:
    """The associated data, written out independently: prefix, then 2-byte-length-prefixed ids."""
    parts = [owner.encode(), kind.encode(), kid.encode()]
    return b"connector-vault:v1" + b"".join(len(p).to_bytes(2, "big") + p for p in parts)


def blob(sealed: str) -> bytes:
    return base64.urlsafe_b64decode(sealed.split("$", 1)[1])


def test_constants() -> None:
    """AES-256 keys, 96-bit nonces, versioned associated-data prefix."""
    assert (KEY_BYTES, NONCE_BYTES, AAD_PREFIX) == (32, 12, b"connector-vault:v1")


def test_sealed_format_decrypts_with_plain_aes_gcm() -> None:
    """seal = current kid '$' base64url(nonce||ct||tag), under owner/kind/kid associated data."""
    sealed = VAULT.seal("1//refresh-é", owner_id="acct1", kind=SecretKind.REFRESH_TOKEN)
    kid, _, encoded = sealed.partition("$")
    raw = base64.urlsafe_b64decode(encoded)
    assert kid == "k2"
    assert len(raw) == NONCE_BYTES + len("1//refresh-é".encode()) + 16
    plain = AESGCM(K2).decrypt(raw[:12], raw[12:], aad("acct1", "refresh_token", "k2"))
    assert plain.decode() == "1//refresh-é"


def test_seal_uses_a_fresh_nonce_each_time() -> None:
    """Sealing the same value twice gives different nonces and ciphertexts."""
    a, b = (VAULT.seal("x", owner_id="o", kind=SecretKind.EMAIL) for _ in range(2))
    assert blob(a)[:12] != blob(b)[:12]
    assert a != b


@pytest.mark.parametrize("plain", ["", "a", "1//0g-token_" * 40, "ünïcödé ✓"])
def test_round_trip(plain: str) -> None:
    """Whatever the text (empty, long, non-ASCII), open(seal(x)) == x."""
    sealed = VAULT.seal(plain, owner_id="acct1", kind=SecretKind.ACCESS_TOKEN)
    assert VAULT.open(sealed, owner_id="acct1", kind=SecretKind.ACCESS_TOKEN) == plain


def test_associated_data_is_length_prefixed() -> None:
    """Owner 'ab'+kind and owner 'a'+'b...' cannot collide: lengths are part of the bytes."""
    assert aad("ab", "email", "k1") != aad("a", "bemail", "k1")
    sealed = VAULT.seal("x", owner_id="ab", kind=SecretKind.EMAIL)
    raw = blob(sealed)
    assert AESGCM(K2).decrypt(raw[:12], raw[12:], aad("ab", "email", "k2")) == b"x"


SEALED = VAULT.seal("secret", owner_id="acct1", kind=SecretKind.REFRESH_TOKEN)


@pytest.mark.parametrize(
    ("owner", "kind", "sealed"),
    [
        ("acct2", SecretKind.REFRESH_TOKEN, SEALED),
        ("acct1", SecretKind.ACCESS_TOKEN, SEALED),
        ("acct1", SecretKind.REFRESH_TOKEN, "k1$" + SEALED.split("$", 1)[1]),
        ("acct1", SecretKind.REFRESH_TOKEN,
         "k2$" + base64.urlsafe_b64encode(blob(SEALED)[:-1] + b"\x00").decode()),
    ],
    ids=["other owner", "other kind", "relabelled key id", "flipped tag"],
)  # fmt: skip
def test_a_moved_or_tampered_value_fails_authentication(
    owner: str, kind: SecretKind, sealed: str
) -> None:
    """One change (owner, kind, key id label, a ciphertext byte) and the value will not open."""
    assert VAULT.open(SEALED, owner_id="acct1", kind=SecretKind.REFRESH_TOKEN) == "secret"
    with pytest.raises(VaultError) as caught:
        VAULT.open(sealed, owner_id=owner, kind=kind)
    assert str(caught.value) == f"a sealed {kind} failed authentication (tampered or moved)"


def test_unknown_key_id_names_the_fix() -> None:
    """A value sealed under a key no longer in the ring says which key to add back."""
    sealed = Vault(KeyRing("k9", {"k9": K1})).seal("x", owner_id="o", kind=SecretKind.EMAIL)
    with pytest.raises(VaultError) as caught:
        VAULT.open(sealed, owner_id="o", kind=SecretKind.EMAIL)
    assert str(caught.value) == (
        "a email was sealed with vault key 'k9', which is not in the key ring; add the old key "
        "back until `connector vault rotate` has re-encrypted everything"
    )


EMPTY = VAULT.seal("", owner_id="o", kind=SecretKind.EMAIL)  # the shortest valid blob: 28 bytes


@pytest.mark.parametrize(
    "sealed",
    [
        EMPTY.replace("$", ""),  # no separator
        "k 2$" + EMPTY.split("$", 1)[1],  # key id outside its alphabet
        "$" + EMPTY.split("$", 1)[1],  # empty key id
        "k2$" + base64.urlsafe_b64encode(blob(EMPTY)[:-1]).decode(),  # 27 bytes: too short
        "k2$!!!!",  # not base64
        "k2$ünï",  # not even ASCII
        "k2$",
    ],
)
def test_malformed_values_are_refused(sealed: str) -> None:
    """Anything not `kid$base64url` of at least nonce+tag bytes is 'malformed', not decrypted."""
    assert len(blob(EMPTY)) == 28
    assert VAULT.open(EMPTY, owner_id="o", kind=SecretKind.EMAIL) == ""
    with pytest.raises(VaultError) as caught:
        VAULT.open(sealed, owner_id="o", kind=SecretKind.EMAIL)
    assert str(caught.value) == "a sealed value is malformed"


def test_key_id_of_and_needs_reseal() -> None:
    """key_id_of reads the label; only values under another key than the current need a reseal."""
    old = OLD.seal("x", owner_id="o", kind=SecretKind.EMAIL)
    assert (VAULT.key_id_of(old), VAULT.key_id_of(SEALED)) == ("k1", "k2")
    assert (VAULT.needs_reseal(old), VAULT.needs_reseal(SEALED)) == (True, False)
    with pytest.raises(VaultError, match="malformed"):
        VAULT.key_id_of("nothing")


def test_the_key_id_ends_at_the_first_dollar() -> None:
    """The key id is the text before the first '$' (a key id can hold none)."""
    assert VAULT.key_id_of("k2$$" + SEALED.split("$", 1)[1]) == "k2"


def test_reseal_moves_old_values_to_the_current_key() -> None:
    """An old value is re-encrypted under the current key, same plaintext; a current one is kept."""
    old = OLD.seal("tok", owner_id="o", kind=SecretKind.ACCESS_TOKEN)
    new = VAULT.reseal(old, owner_id="o", kind=SecretKind.ACCESS_TOKEN)
    assert new.startswith("k2$")
    assert VAULT.open(new, owner_id="o", kind=SecretKind.ACCESS_TOKEN) == "tok"
    assert VAULT.open(old, owner_id="o", kind=SecretKind.ACCESS_TOKEN) == "tok"  # old key still in
    assert VAULT.reseal(SEALED, owner_id="nobody", kind=SecretKind.EMAIL) is SEALED
    with pytest.raises(VaultError, match="failed authentication"):
        VAULT.reseal(old, owner_id="other", kind=SecretKind.ACCESS_TOKEN)


def test_vault_reprs_and_current_key_name_ids_only() -> None:
    """Reprs name key ids, never key bytes; the current key id is the ring's."""
    assert repr(VAULT) == "Vault(current='k2', key_ids=['k1', 'k2'])"
    assert repr(RING) == "KeyRing(current='k2', key_ids=['k1', 'k2'])"
    assert VAULT.current_key_id == "k2"
    assert B1 not in repr(RING)
    assert repr(EnvKeyProvider(f"k1:{B1}")) == "EnvKeyProvider(CONNECTOR_VAULT_KEYS)"


@pytest.mark.parametrize(
    ("current", "keys", "message"),
    [
        ("k3", {"k1": K1}, "the current key id 'k3' is not in the key ring"),
        ("k 1", {"k 1": K1}, "vault key id 'k 1' must match ^[A-Za-z0-9_\\-]{1,32}$"),
        ("a" * 33, {"a" * 33: K1},
         f"vault key id '{'a' * 33}' must match ^[A-Za-z0-9_\\-]{{1,32}}$"),
        ("k1", {"k1": K1[:31]}, "vault key 'k1' must be 32 bytes, got 31"),
        ("k1", {"k1": K1 + b"\x00"}, "vault key 'k1' must be 32 bytes, got 33"),
        ("k1", {"k1": K1, "k2": b""}, "vault key 'k2' must be 32 bytes, got 0"),
    ],
)  # fmt: skip
def test_key_ring_refuses_bad_keys(current: str, keys: dict[str, bytes], message: str) -> None:
    """A ring whose current key is missing, or with a bad id or key length, is refused."""
    with pytest.raises(VaultError) as caught:
        KeyRing(current, keys)
    assert str(caught.value) == message


def test_key_ring_accepts_the_limits() -> None:
    """A 32-character id of the allowed alphabet and a 32-byte key are fine."""
    kid = "A-z_9" + "x" * 27
    assert KeyRing(kid, {kid: K1}).current == kid


def test_parse_reads_commas_newlines_comments_and_spaces() -> None:
    """Entries split on commas and newlines, '#' lines and blanks are skipped; first is current."""
    text = f"# vault keys\n  k2:{B2} ,\n\n# old\nk1:{B1},,\n"
    ring = KeyRing.parse(text, source="file")
    assert ring.current == "k2"
    assert ring.keys == {"k2": K2, "k1": K1}
    assert list(ring.keys) == ["k2", "k1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "src holds no vault keys; create one with `connector vault generate-key`"),
        ("# only a comment\n , ", "src holds no vault keys; create one with "
         "`connector vault generate-key`"),
        (B1, "src: each key must be 'kid:base64', got a bare value"),
        (f"k1:{B1},k1:{B2}", "src: key id 'k1' appears twice"),
        ("k1:not base64!", "src: key 'k1' is not valid base64"),
        (f"k1:{B1[:-2]}", "src: key 'k1' is not valid base64"),
        ("k1:AAAA", "vault key 'k1' must be 32 bytes, got 3"),
        (f"k1:{B1[:4]}!{B1[4:]}", "src: key 'k1' is not valid base64"),  # strict base64
        (f"k1:{B1[:4]}:{B1[4:]}", "src: key 'k1' is not valid base64"),  # id ends at first ':'
    ],
)  # fmt: skip
def test_parse_refuses_bad_text(text: str, message: str) -> None:
    """Bad key text is refused with a message naming its source and the key."""
    with pytest.raises(VaultError) as caught:
        KeyRing.parse(text, source="src")
    assert str(caught.value) == message


def test_env_provider_parses_its_value() -> None:
    """The environment provider parses its value, naming the variable in errors."""
    assert EnvKeyProvider(f"k1:{B1}").load() == KeyRing("k1", {"k1": K1})
    with pytest.raises(VaultError, match="^CONNECTOR_VAULT_KEYS holds no vault keys"):
        EnvKeyProvider("").load()


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_file_provider_reads_an_owner_only_file(tmp_path: Path, mode: int) -> None:
    """A key file only its owner can read loads."""
    path = tmp_path / "keys"
    path.write_text(f"k1:{B1}\n")
    path.chmod(mode)
    assert FileKeyProvider(path).load() == KeyRing("k1", {"k1": K1})


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o610, 0o601, 0o620, 0o602])
def test_file_provider_refuses_a_file_others_can_reach(tmp_path: Path, mode: int) -> None:
    """Any group or other permission bit on the key file is refused, naming the fix."""
    path = tmp_path / "keys"
    path.write_text(f"k1:{B1}\n")
    path.chmod(mode)
    with pytest.raises(VaultError) as caught:
        FileKeyProvider(path).load()
    assert str(caught.value) == (
        f"the vault key file {path} is readable by others; run chmod 600 on it"
    )


def test_file_provider_reports_a_missing_file_and_names_it_in_parse_errors(
    tmp_path: Path,
) -> None:
    """A missing file is a VaultError with the OS reason; parse errors name the file."""
    path = tmp_path / "absent"
    with pytest.raises(VaultError) as caught:
        FileKeyProvider(path).load()
    assert str(caught.value) == f"cannot read the vault key file {path}: No such file or directory"
    path.write_text("")
    path.chmod(0o600)
    with pytest.raises(VaultError, match=f"^{path} holds no vault keys"):
        FileKeyProvider(path).load()


def test_provider_from_settings_prefers_the_file(tmp_path: Path) -> None:
    """The key file wins over the variable; the variable is used alone; neither is an error."""
    path = tmp_path / "keys"
    both = SimpleNamespace(vault_key_file=path, vault_keys=f"k1:{B1}")
    assert key_provider_from_settings(both) == FileKeyProvider(path)  # type: ignore[arg-type]
    env = SimpleNamespace(vault_key_file=None, vault_keys=f"k1:{B1}")
    assert key_provider_from_settings(env) == EnvKeyProvider(f"k1:{B1}")  # type: ignore[arg-type]
    neither = SimpleNamespace(vault_key_file=None, vault_keys="")
    with pytest.raises(VaultError) as caught:
        key_provider_from_settings(neither)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "no vault keys configured: set CONNECTOR_VAULT_KEYS or CONNECTOR_VAULT_KEY_FILE "
        "(generate a key with `connector vault generate-key`)"
    )


def test_vault_from_provider_and_settings() -> None:
    """A vault built from a provider or settings seals with that ring's current key."""
    vault = Vault.from_provider(EnvKeyProvider(f"k2:{B2},k1:{B1}"))
    assert vault.current_key_id == "k2"
    settings = SimpleNamespace(vault_key_file=None, vault_keys=f"k1:{B1}")
    from_settings = Vault.from_settings(settings)  # type: ignore[arg-type]
    assert from_settings.key_id_of(from_settings.seal("x", owner_id="o", kind=SecretKind.EMAIL))
    assert from_settings.current_key_id == "k1"
    assert vault.open(OLD.seal("x", owner_id="o", kind=SecretKind.EMAIL), owner_id="o",
                      kind=SecretKind.EMAIL) == "x"  # fmt: skip


def test_generate_key_entry() -> None:
    """A generated entry is 'kid:base64' of 32 random bytes that parses; bad ids are refused."""
    entry = generate_key_entry("k_1")
    kid, _, encoded = entry.partition(":")
    assert kid == "k_1"
    assert len(base64.b64decode(encoded, validate=True)) == 32
    assert KeyRing.parse(entry, source="x").current == "k_1"
    assert generate_key_entry("k_1") != entry
    with pytest.raises(VaultError) as caught:
        generate_key_entry("bad id")
    assert str(caught.value) == "vault key id 'bad id' must match ^[A-Za-z0-9_\\-]{1,32}$"


def test_secret_kinds_are_stable_strings() -> None:
    """Kinds are part of stored associated data: their strings must never change."""
    assert [k.value for k in SecretKind] == [
        "refresh_token", "access_token", "email", "code_verifier",
    ]  # fmt: skip
