"""Mutual TLS for gRPC, when configured (GRPC_TLS_CERT, GRPC_TLS_KEY, GRPC_TLS_CA): servers
require a client certificate signed by the CA, clients check the server's against it.

Each process's certificate names it: a URI SAN `spiffe://aftersales/<process>` (and DNS names
for the address it serves at). A server takes the caller's process from that name and refuses a
caller token the process may not bring (servicekit.caller_token). Servers re-read their
certificate when its files change, so cert-manager can renew it without a restart; each read
publishes the certificate's expiry as a gauge."""

from __future__ import annotations

import datetime
import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from servicekit.metrics import CERTIFICATE_EXPIRY

log = logging.getLogger(__name__)

IDENTITY_PREFIX = "spiffe://aftersales/"
# What a peer whose certificate names no process of ours is called: no token is good from it.
NOBODY = ""


def identity_uri(process: str) -> str:
    return f"{IDENTITY_PREFIX}{process}"


def peer_process(auth_context: Mapping[str, Iterable[bytes]]) -> str | None:
    """The process the caller's certificate names; None on a call without TLS, NOBODY when
    its certificate names none of ours."""
    uris = auth_context.get("peer_uri")
    if uris is None:
        return None if auth_context.get("transport_security_type") != [b"ssl"] else NOBODY
    for uri in uris:
        name = uri.decode(errors="replace")
        if name.startswith(IDENTITY_PREFIX):
            return name.removeprefix(IDENTITY_PREFIX)
    return NOBODY


def certificate_process(certificate: x509.Certificate) -> str:
    """Who a certificate says it is: the process its URI names, else its common name."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        names = None
    if names is not None:
        for uri in names.value.get_values_for_type(x509.UniformResourceIdentifier):
            if uri.startswith(IDENTITY_PREFIX):
                return uri.removeprefix(IDENTITY_PREFIX)
    common = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(common[0].value) if common else NOBODY


def _publish_expiry(chain: bytes) -> None:
    certificate = x509.load_pem_x509_certificate(chain)
    CERTIFICATE_EXPIRY.labels(certificate_process(certificate), "grpc").set(
        certificate.not_valid_after_utc.timestamp()
    )


Stamp = tuple[tuple[int, int, int, int] | None, ...]


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # this process's certificate chain (PEM)
    key: Path  # its private key (PEM)
    ca: Path  # the CA that signs every process's certificate (PEM)

    def _stamp(self) -> Stamp:
        stamps: list[tuple[int, int, int, int] | None] = []
        for path in (self.cert, self.key, self.ca):
            try:
                seen = path.stat()
            except FileNotFoundError:
                stamps.append(None)
            else:
                stamps.append((seen.st_dev, seen.st_ino, seen.st_mtime_ns, seen.st_size))
        return tuple(stamps)

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        chain = self.cert.read_bytes()
        configuration = grpc.ssl_server_certificate_configuration(
            [(self.key.read_bytes(), chain)], root_certificates=self.ca.read_bytes()
        )
        _publish_expiry(chain)
        return configuration

    def server_credentials(self) -> grpc.ServerCredentials:
        """Credentials that look, at each new connection, whether the files changed, and
        serve the new certificate (and trust the new CA) from then on."""
        seen = [self._stamp()]

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            stamp = self._stamp()
            if stamp == seen[0]:
                return None
            try:
                configuration = self._configuration()
            except (OSError, ValueError) as error:
                # cert-manager writes the files one by one: the next connection tries again.
                log.warning("kept the certificate served before: %s", error)
                return None
            seen[0] = stamp
            log.info("serving the certificate re-read from %s", self.cert)
            return configuration

        return grpc.dynamic_ssl_server_credentials(
            self._configuration(), fetch, require_client_authentication=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        chain = self.cert.read_bytes()
        _publish_expiry(chain)
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes(),
            private_key=self.key.read_bytes(),
            certificate_chain=chain,
        )


def issue_process_certificate(
    folder: Path,
    process: str,
    ca_name: x509.Name,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_file: Path,
    valid_for: datetime.timedelta = datetime.timedelta(days=1),
    namespace: str = "aftersales",
) -> TlsFiles:
    """A certificate for `process` as cert-manager issues it in the cluster (k8s/overlays/prod/
    certificates.yaml): its identity URI, the DNS names of its Service, and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(identity_uri(process)),
        *(x509.DNSName(name) for name in service_dns_names(process, namespace)),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, process)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(cert=folder / f"{process}.pem", key=folder / f"{process}.key", ca=ca_file)
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return files


def service_dns_names(process: str, namespace: str = "aftersales") -> list[str]:
    """The names a process's Service answers to, the short one being what clients dial."""
    return [
        process,
        f"{process}.{namespace}",
        f"{process}.{namespace}.svc",
        f"{process}.{namespace}.svc.cluster.local",
    ]
