"""Hash functions of the audit log: the chain hash and the keyed hash for personal identifiers."""

from __future__ import annotations

import hashlib
import hmac

# The chain starts from a fixed, all-zero predecessor so that any verifier can recompute seq 1.
GENESIS_HASH = bytes(32)


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of `value` under `key`, as hex.

    Lets the log correlate an e-mail address, IP address or search query across events without
    storing it: without the key the digest cannot be reversed by guessing likely inputs.
    """
    if not key:
        raise ValueError("keyed_hash needs a non-empty key")
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def chain_hash(prev_hash: bytes, canonical: bytes) -> bytes:
    """`SHA-256(prev_hash || canonical_bytes)`; both the writer and the verifier call this."""
    return hashlib.sha256(prev_hash + canonical).digest()
