"""The nodes' swarm certificates: read on each node, parsed, and judged against the clock.

Every swarm node holds a certificate from the swarm's CA (`facts.NODE_CERT_PATH`). Its
engine renews it by itself while it is in the swarm, at a random moment between half and
four fifths of its life (`CAConfig.NodeCertExpiry`, 90 days unless set otherwise). A node
that stays off longer than that life comes back with an expired certificate: the managers
refuse it and it cannot renew it, so it has to be rebuilt. Reading is `observe_certificates`;
what `status` says of them (`expiry`, `certificate_warnings`) is pure.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from swarmboot import facts
from swarmboot.errors import SwarmbootError
from swarmboot.remote import RemoteError
from swarmboot.routes import NotRoutable
from swarmboot.state import Instance, NodeCert, Observed

if TYPE_CHECKING:
    from swarmboot.cluster import Context

__all__ = [
    "EXPIRY_WARNING_DAYS",
    "CertificateError",
    "certificate_warnings",
    "expiry",
    "observe_certificates",
    "parse_node_certificate",
]

log = logging.getLogger("swarmboot.certs")

# A node's certificate that expires within this many days is warned of.
EXPIRY_WARNING_DAYS = 30
_DAY = 86400


class CertificateError(SwarmbootError):
    """A node's certificate file is not a certificate."""


def parse_node_certificate(text: str, *, source: str = facts.NODE_CERT_PATH) -> NodeCert:
    """The first certificate of a PEM file (the node's own; a chain may follow)."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(text.encode())
    except ValueError as exc:
        raise CertificateError(f"{source}: not a PEM certificate ({exc})") from None
    try:
        key_id = cert.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier
        ).value.key_identifier
    except x509.ExtensionNotFound:
        key_id = None
    return NodeCert(cert.not_valid_after_utc.timestamp(), key_id.hex() if key_id else "")


def observe_certificates(ctx: Context, observed: Observed) -> Observed:
    """`observed` with the certificate of each node that answered, read over SSH, and the
    time they were read. A node that does not answer now, or holds no certificate (in no
    swarm), has none."""
    answering = [i for i in observed.instances if i.label in observed.reports]

    def read(inst: Instance) -> NodeCert | None:
        try:
            text = ctx.remote(inst).read_file(facts.NODE_CERT_PATH)
        except (RemoteError, NotRoutable):
            return None
        if not text:
            return None
        try:
            return parse_node_certificate(text, source=f"{inst.label}:{facts.NODE_CERT_PATH}")
        except CertificateError as exc:
            log.warning("%s", exc.message)
            return None

    found = ctx.parallel(read, answering)
    return replace(
        observed,
        certificates={i.label: c for i, c in zip(answering, found, strict=True) if c is not None},
        certificates_read_at=ctx.clock.wall(),
    )


def _date(epoch: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def expiry(observed: Observed, label: str) -> dict[str, Any]:
    """A node's certificate expiry for its status row: the date (UTC) and whole days left;
    None each when it was not read."""
    cert = observed.certificates.get(label)
    now = observed.certificates_read_at
    if cert is None or now is None:
        return {"cert_expires": None, "cert_days_left": None}
    return {
        "cert_expires": _date(cert.not_after),
        "cert_days_left": int((cert.not_after - now) // _DAY),
    }


def certificate_warnings(observed: Observed) -> list[str]:
    """What `status` warns of: a node's certificate expired or within EXPIRY_WARNING_DAYS of
    it, and a node down in the swarm for longer than a certificate lives (it cannot come
    back: it has to be rebuilt)."""
    now = observed.certificates_read_at
    if now is None:
        return []
    lines = []
    for label, cert in sorted(observed.certificates.items()):
        left = cert.not_after - now
        if left <= 0:
            lines.append(
                f"{label}: its swarm certificate expired on {_date(cert.not_after)}: the "
                f"managers refuse it; `swarmboot node rebuild SPEC {label}` makes it anew"
            )
        elif left < EXPIRY_WARNING_DAYS * _DAY:
            lines.append(
                f"{label}: its swarm certificate expires on {_date(cert.not_after)}, in "
                f"{int(left // _DAY)} day(s); its engine renews it while it is in the swarm; "
                "`swarmboot rotate SPEC --ca` gives every node a new one now"
            )
    swarm = observed.swarm
    if swarm is None or swarm.ca is None:
        return lines
    ready = {e.hostname for e in swarm.nodes if e.state == "ready"}
    life = swarm.ca.node_cert_expiry
    for entry in sorted(swarm.nodes, key=lambda e: e.hostname):
        if entry.state != "down" or entry.updated_at is None or entry.hostname in ready:
            continue
        offline = now - entry.updated_at
        if offline > life:
            lines.append(
                f"{entry.hostname} has been down in the swarm for {int(offline // _DAY)} days, "
                f"longer than a node certificate lives ({life // _DAY} days): its certificate "
                "has expired and it cannot rejoin; `swarmboot node rebuild SPEC "
                f"{entry.hostname}` makes it anew"
            )
    return lines
