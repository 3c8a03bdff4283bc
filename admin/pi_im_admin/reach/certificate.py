"""The certificate the device serves (the PEM the console is handed): its names, its dates,
who issued it, and whether the public CAs a phone trusts vouch for it."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.verification import DNSName, PolicyBuilder, Store, VerificationError

# Debian's ca-certificates: Mozilla's roots, as the apps' platforms trust them.
SYSTEM_ROOTS = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class Certificate:
    names: tuple[str, ...]
    issuer: str
    self_signed: bool
    not_after: float
    # Why the public CAs do not vouch for it for the domain ("" when they do).
    untrusted: str


def _common_name(name: x509.Name) -> str:
    common = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(common[0].value) if common else name.rfc4514_string()


def _dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(extension.value.get_values_for_type(x509.DNSName))


def _untrusted(chain: list[x509.Certificate], domain: str, roots: Path, now: datetime) -> str:
    try:
        with warnings.catch_warnings():
            # A few old roots carry a serial cryptography calls non-conforming; still roots.
            warnings.simplefilter("ignore")
            store = Store(x509.load_pem_x509_certificates(roots.read_bytes()))
    except (OSError, ValueError) as error:
        return f"the device's list of trusted CAs cannot be read ({error})"
    try:
        verifier = PolicyBuilder().store(store).time(now).build_server_verifier(DNSName(domain))
        verifier.verify(chain[0], chain[1:])
    except (VerificationError, ValueError) as error:
        return str(error)
    return ""


def read(pem: Path, domain: str, roots: Path = SYSTEM_ROOTS) -> Certificate:
    """The certificate chain in `pem` (its private key beside it is not looked at)."""
    blocks = pem.read_bytes()
    chain = x509.load_pem_x509_certificates(blocks)
    leaf = chain[0]
    now = datetime.now(UTC)
    return Certificate(
        names=_dns_names(leaf),
        issuer=_common_name(leaf.issuer),
        self_signed=leaf.issuer == leaf.subject,
        not_after=leaf.not_valid_after_utc.timestamp(),
        untrusted=_untrusted(chain, domain, roots, now),
    )


def covers(names: tuple[str, ...], host: str) -> bool:
    """Whether a certificate's names include a host (a wildcard covers one label)."""
    host = host.lower().rstrip(".")
    for name in (n.lower() for n in names):
        if name == host or (
            name.startswith("*.") and host.count(".") >= 2 and host.split(".", 1)[1] == name[2:]
        ):
            return True
    return False
