"""The benchmark's SCRAM against the RFCs' own worked examples, and the keys it writes for
bulk accounts against the proof its client sends (what a server checks)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from pi_im_bench.scram import SaltedPasswordCache, ScramClient, ScramError, StoredKeys

# RFC 5802 section 5 and RFC 7677 section 3.
EXAMPLES = [
    (
        "SCRAM-SHA-1",
        "fyko+d2lbbFgONRv9qkxdawL",
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    ),
    (
        "SCRAM-SHA-256",
        "rOprNGfwEbeRWgbNEkqO",
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    ),
]


@pytest.mark.parametrize(
    ("mechanism", "nonce", "server_first", "client_final", "server_final"), EXAMPLES
)
def test_rfc_example(mechanism, nonce, server_first, client_final, server_final):
    client = ScramClient(mechanism, "user", "pencil", SaltedPasswordCache(), nonce=nonce)
    assert client.first() == f"n,,n=user,r={nonce}".encode()
    assert client.final(server_first.encode()) == client_final.encode()
    client.verify(server_final.encode())


def test_cache_is_filled_once_per_account():
    cache = SaltedPasswordCache()
    mechanism, nonce, server_first, client_final, _ = EXAMPLES[0]
    for _ in range(3):
        client = ScramClient(mechanism, "user", "pencil", cache, nonce=nonce)
        assert client.final(server_first.encode()) == client_final.encode()
    assert cache.computed == 1


def test_wrong_server_signature_is_refused():
    mechanism, nonce, server_first, _, _ = EXAMPLES[0]
    client = ScramClient(mechanism, "user", "pencil", SaltedPasswordCache(), nonce=nonce)
    client.final(server_first.encode())
    with pytest.raises(ScramError, match="signature"):
        client.verify(b"v=" + base64.b64encode(b"x" * 20))


def test_nonce_not_extended_is_refused():
    client = ScramClient("SCRAM-SHA-1", "user", "pencil", SaltedPasswordCache(), nonce="abc")
    with pytest.raises(ScramError, match="nonce"):
        client.final(b"r=abc,s=QSXCR+Q6sek8bf92,i=4096")


@pytest.mark.parametrize(
    ("mechanism", "digest"), [("SCRAM-SHA-1", "sha1"), ("SCRAM-SHA-256", "sha256")]
)
def test_stored_keys_verify_the_client_proof(mechanism, digest):
    """Keys written for a bulk account must accept the client's proof, as a server checks it:
    ClientKey = proof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) == StoredKey."""
    salt, iterations = b"0123456789abcdef", 4096
    salted = hashlib.pbkdf2_hmac(digest, b"secret", salt, iterations)
    keys = StoredKeys.derive(digest, salted, salt, iterations)
    client = ScramClient(mechanism, "bench-00001", "secret", SaltedPasswordCache(), nonce="n0")
    server_first = f"r=n0srv,s={base64.b64encode(salt).decode()},i={iterations}"
    final = client.final(server_first.encode()).decode()
    without_proof, proof = final.rsplit(",p=", 1)
    auth_message = f"n=bench-00001,r=n0,{server_first},{without_proof}".encode()
    signature = hmac.digest(keys.stored_key, auth_message, digest)
    client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature, strict=True))
    assert hashlib.new(digest, client_key).digest() == keys.stored_key
    server_signature = hmac.digest(keys.server_key, auth_message, digest)
    client.verify(b"v=" + base64.b64encode(server_signature))
