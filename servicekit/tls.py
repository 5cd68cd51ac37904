"""Mutual TLS for gRPC, when configured (GRPC_TLS_CERT, GRPC_TLS_KEY, GRPC_TLS_CA): servers
require a client certificate signed by the CA, clients check the server's against it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # this process's certificate chain (PEM)
    key: Path  # its private key (PEM)
    ca: Path  # the CA that signs every process's certificate (PEM)

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())],
            root_certificates=self.ca.read_bytes(),
            require_client_auth=True,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes(),
            private_key=self.key.read_bytes(),
            certificate_chain=self.cert.read_bytes(),
        )
