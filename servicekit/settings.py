"""Settings from environment variables, with working local defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from servicekit.bus import ARCHIVE_MAX_BYTES, BusAuth
from servicekit.caller_token import CALLS_ON
from servicekit.grpc_client import channel_target
from servicekit.personal_data import LOCAL_PEPPER, PEPPER_ENV
from servicekit.tls import TlsFiles

DEFAULT_DATA_DIR = Path(".data")

# Local defaults keep clear of the standard ports of servers that may already run here.
DEFAULT_NATS_URL = "nats://127.0.0.1:14222"
DEFAULT_GRPC_PORTS = {"orders": 50151, "inventory": 50152, "customers": 50153, "reporting": 50154}
DEFAULT_METRICS_PORTS = {"orders": 9151, "inventory": 9152, "customers": 9153, "reporting": 9154}


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def data_dir() -> Path:
    return Path(os.environ.get("DATA_DIR", DEFAULT_DATA_DIR))


def default_database_url(service: str) -> str:
    return f"sqlite+aiosqlite:///{data_dir() / f'{service}.db'}"


@dataclass(frozen=True)
class TrustSettings:
    """How our processes trust each other (servicekit.caller_token, servicekit.tls)."""

    # The folder of caller-token keys: `<process>.pub` of every process that signs, and this
    # process's own `<process>.key`. `make run` makes them in the data folder.
    token_keys: Path
    # Mutual TLS on every gRPC channel and server; None: plaintext.
    tls: TlsFiles | None

    @classmethod
    def from_env(cls) -> TrustSettings:
        return cls(
            token_keys=Path(os.environ.get("INTERNAL_TOKEN_KEYS") or data_dir() / "keys"),
            tls=tls_from_env(),
        )


def tls_from_env() -> TlsFiles | None:
    names = ("GRPC_TLS_CERT", "GRPC_TLS_KEY", "GRPC_TLS_CA")
    paths = [os.environ.get(name) or "" for name in names]
    if not any(paths):
        return None
    if not all(paths):
        raise SystemExit(f"{', '.join(names)} go together: set all three or none")
    cert, key, ca = (Path(path) for path in paths)
    return TlsFiles(cert=cert, key=key, ca=ca)


@dataclass(frozen=True)
class Settings:
    service: str
    database_url: str
    db_schema: str | None
    nats_url: str
    # Its NATS user (servicekit.bus_permissions) and where that user's password is.
    nats_auth: BusAuth
    grpc_host: str
    grpc_port: int
    metrics_port: int
    log_level: str
    demo_data: bool
    otlp_endpoint: str | None
    # OTEL_TRACES_SAMPLER_ARG: the share of new traces recorded when they are exported.
    trace_sample_ratio: float
    shutdown_grace_seconds: float
    # How often the gRPC health looks at the database and NATS, and how long it waits for the
    # database's answer (servicekit.health).
    health_check_interval_seconds: float
    health_check_timeout_seconds: float
    # Clients are asked to reconnect (GOAWAY) after this long on one connection, and calls in
    # flight then get the grace to finish: on reconnecting they resolve the name again, so
    # new replicas take calls within about this long.
    grpc_max_connection_age_seconds: float
    grpc_max_connection_age_grace_seconds: float
    # Fault injection for the crash tests: hold outbox rows this long before publishing.
    outbox_publish_delay_seconds: float
    # How many copies of each JetStream stream the cluster keeps (3 in production).
    stream_replicas: int
    trust: TrustSettings
    # Where the services this one calls on (caller_token.CALLS_ON) listen: name -> address.
    callee_addresses: dict[str, str]
    # PERSONAL_DATA_PEPPER (a Secret of orders and customers): names each phone's data key in
    # the key bucket (servicekit.personal_data) without giving the phone away.
    personal_data_pepper: bytes
    # NATS_ARCHIVE_MAX_BYTES: the archive's size limit (servicekit.bus.ARCHIVE_STREAM), which
    # the NATS server's storage must hold.
    archive_max_bytes: int = ARCHIVE_MAX_BYTES

    @classmethod
    def from_env(cls, service: str) -> Settings:
        upper = service.upper()
        return cls(
            service=service,
            database_url=os.environ.get("DATABASE_URL") or default_database_url(service),
            db_schema=os.environ.get("DB_SCHEMA") or None,
            nats_url=os.environ.get("NATS_URL", DEFAULT_NATS_URL),
            nats_auth=nats_auth_from_env(service),
            grpc_host=os.environ.get("GRPC_HOST", "127.0.0.1"),
            grpc_port=int(os.environ.get("GRPC_PORT", DEFAULT_GRPC_PORTS.get(service, 0))),
            metrics_port=int(os.environ.get("METRICS_PORT", DEFAULT_METRICS_PORTS.get(service, 0))),
            log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
            demo_data=env_flag("DEMO_DATA"),
            otlp_endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
            trace_sample_ratio=float(os.environ.get("OTEL_TRACES_SAMPLER_ARG") or "1"),
            shutdown_grace_seconds=float(os.environ.get("SHUTDOWN_GRACE_SECONDS", "10")),
            health_check_interval_seconds=float(
                os.environ.get("HEALTH_CHECK_INTERVAL_SECONDS", "5")
            ),
            health_check_timeout_seconds=float(os.environ.get("HEALTH_CHECK_TIMEOUT_SECONDS", "2")),
            grpc_max_connection_age_seconds=float(
                os.environ.get("GRPC_MAX_CONNECTION_AGE_SECONDS", "30")
            ),
            grpc_max_connection_age_grace_seconds=float(
                os.environ.get("GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS", "10")
            ),
            outbox_publish_delay_seconds=float(
                os.environ.get(f"{upper}_OUTBOX_PUBLISH_DELAY_SECONDS", "0")
            ),
            stream_replicas=int(os.environ.get("NATS_STREAM_REPLICAS", "1")),
            trust=TrustSettings.from_env(),
            callee_addresses={name: service_address(name) for name in CALLS_ON.get(service, ())},
            personal_data_pepper=(os.environ.get(PEPPER_ENV) or LOCAL_PEPPER).encode(),
            archive_max_bytes=int(os.environ.get("NATS_ARCHIVE_MAX_BYTES") or ARCHIVE_MAX_BYTES),
        )


def nats_auth_from_env(service: str) -> BusAuth:
    """The NATS user: the service's own (NATS_USER to run a command as another, such as the
    operator's for a dead-letter replay), the file with its password NATS_PASSWORD_FILE, and
    NATS_TLS_CA, the CA of the server's certificate when the URL is `tls://`."""
    password = os.environ.get("NATS_PASSWORD_FILE") or None
    ca = os.environ.get("NATS_TLS_CA") or None
    return BusAuth(
        user=os.environ.get("NATS_USER") or service,
        password_file=Path(password) if password else None,
        tls_ca=Path(ca) if ca else None,
    )


def service_address(service: str) -> str:
    """Where a client finds a service's gRPC port: `<SERVICE>_ADDR`, else the local default.
    One `host:port`; the replicas' IP addresses, comma-separated; or a name that resolves to
    every replica (`dns:///orders:50151`). Calls balance over the replicas either way."""
    variable = f"{service.upper()}_ADDR"
    address = os.environ.get(variable, f"127.0.0.1:{DEFAULT_GRPC_PORTS[service]}")
    try:
        channel_target(address)
    except ValueError as error:
        raise SystemExit(f"{variable}: {error}") from None
    return address
