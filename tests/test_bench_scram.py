"""The benchmark's SCRAM against the RFCs' own worked examples, and the keys it writes for
bulk accounts against the proof its client sends (what a server checks); channel binding and
FAST token logins."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
from pathlib import Path

import pytest

from pi_im_bench.scram import (
    ChannelBinding,
    FastClient,
    SaltedPasswordCache,
    ScramClient,
    ScramError,
    StoredKeys,
    tls_server_end_point,
)

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


def certificate(tmp_path: Path, digest: str) -> bytes:
    """A self-signed ECDSA certificate signed with `digest`, as DER (by openssl: Python's
    cryptography refuses to sign with SHA-1)."""
    der = tmp_path / f"{digest}.der"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         f"-{digest}", "-nodes", "-subj", "/CN=pi-im.test", "-days", "1",
         "-keyout", str(tmp_path / "key.pem"), "-outform", "DER", "-out", str(der)],
        check=True, capture_output=True,
    )  # fmt: skip
    return der.read_bytes()


@pytest.mark.parametrize(
    ("signed_with", "hashed_with"),
    [("sha256", "sha256"), ("sha384", "sha384"), ("sha512", "sha512"), ("sha1", "sha256")],
)
def test_tls_server_end_point_hashes_with_the_certificates_signature_hash(
    tmp_path: Path, signed_with: str, hashed_with: str
) -> None:
    """RFC 5929 section 4.1: the signature's hash, but SHA-256 in place of MD5 or SHA-1."""
    der = certificate(tmp_path, signed_with)
    assert tls_server_end_point(der) == hashlib.new(hashed_with, der).digest()


def test_plus_mechanisms_bind_the_channel_data_into_the_proof():
    mechanism, nonce, server_first, _, _ = EXAMPLES[0]
    data = b"\x01\x02binding"
    binding = ChannelBinding("tls-server-end-point", data)
    client = ScramClient(
        f"{mechanism}-PLUS", "user", "pencil", SaltedPasswordCache(), nonce=nonce, binding=binding
    )
    assert client.first() == f"p=tls-server-end-point,,n=user,r={nonce}".encode()
    final = dict(
        part.split("=", 1) for part in client.final(server_first.encode()).decode().split(",")
    )
    assert base64.b64decode(final["c"]) == b"p=tls-server-end-point,," + data
    unbound = ScramClient(mechanism, "user", "pencil", SaltedPasswordCache(), nonce=nonce)
    assert final["p"] != unbound.final(server_first.encode()).decode().rsplit("p=", 1)[1]


@pytest.mark.parametrize(
    ("mechanism", "binding"),
    [("SCRAM-SHA-1-PLUS", None), ("SCRAM-SHA-1", ChannelBinding("tls-unique", b"x"))],
)
def test_binding_goes_with_plus_mechanisms_only(mechanism, binding):
    with pytest.raises(ScramError, match="channel binding"):
        ScramClient(mechanism, "user", "pencil", SaltedPasswordCache(), binding=binding)


def test_fast_token_login_is_one_hmac_each_way():
    """XEP-0484: the initial response is the user, NUL, HMAC(token, "Initiator" + binding); the
    server proves the token with HMAC(token, "Responder" + binding)."""
    token, data = b"a-token", b"cb"
    client = FastClient("alice", token, data)
    user, proof = client.initial_response().split(b"\0", 1)
    assert user == b"alice"
    assert proof == hmac.digest(token, b"Initiator" + data, "sha256")
    client.verify(hmac.digest(token, b"Responder" + data, "sha256"))
    with pytest.raises(ScramError, match="FAST proof"):
        client.verify(hmac.digest(b"another-token", b"Responder" + data, "sha256"))
