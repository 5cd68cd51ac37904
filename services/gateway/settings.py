"""Gateway settings from environment variables, with working local defaults."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

from servicekit.settings import default_database_url, env_flag, service_address

SERVICES = ("orders", "inventory", "customers", "reporting")


@dataclass(frozen=True)
class GatewaySettings:
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = field(default_factory=lambda: default_database_url("gateway"))
    db_schema: str | None = None
    demo_data: bool = False
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # True when no JWT_SECRET was given: tokens then die with the process.
    jwt_secret_generated: bool = False
    jwt_ttl_seconds: int = 3600
    rate_limit_per_second: float = 100.0
    # Tracking-link look-ups per client address: plenty for a customer, slow for a guesser.
    tracking_rate_per_second: float = 2.0
    # Bodies over this many bytes are refused (413) before they are read.
    max_body_bytes: int = 1024 * 1024
    # Failed sign-ins before a username from one address, or a client address (many shops
    # behind one NAT), is locked out for a while, and a username from anywhere slowed down.
    login_failures_per_user: int = 5
    login_failures_per_address: int = 200
    # Password checks (argon2, 64 MiB each) running at once; more wait their turn. One keeps
    # the gateway near 180 MB at worst (the dev overlay's limit is 192 MiB); each more adds 64.
    password_checks_at_once: int = 1
    # Proxies (comma-separated addresses or networks, or "*") whose X-Forwarded-For names the
    # client: behind an ingress, its pods' range, so the login throttle and the tracking link's
    # limit count each client, not the ingress. From anyone else the header is ignored.
    forwarded_allow_ips: str = "127.0.0.1"
    # How old an identity epoch read may be (services/gateway/identities): how long, at most,
    # another replica still lets in a token revoked through this one. 0 (the default): at once
    # everywhere, for a database read per round of requests.
    identity_fresh_seconds: float = 0.0
    # On SIGTERM: how long readiness answers 503 while requests are still taken, then how long
    # the requests in flight get to finish once the port is closed (services/gateway/draining).
    drain_pause_seconds: float = 0.0
    shutdown_grace_seconds: float = 10.0
    # Where the built web console lies; empty: the repository's web/dist (services/gateway/console).
    console_dist: str = ""
    log_level: str = "INFO"
    otlp_endpoint: str | None = None
    trace_sample_ratio: float = 1.0
    service_addresses: dict[str, str] = field(
        default_factory=lambda: {name: service_address(name) for name in SERVICES}
    )

    @classmethod
    def from_env(cls) -> GatewaySettings:
        secret = os.environ.get("JWT_SECRET") or ""
        return cls(
            host=os.environ.get("GATEWAY_HOST", "127.0.0.1"),
            port=int(os.environ.get("GATEWAY_PORT", "8080")),
            database_url=os.environ.get("DATABASE_URL") or default_database_url("gateway"),
            db_schema=os.environ.get("DB_SCHEMA") or None,
            demo_data=env_flag("DEMO_DATA"),
            jwt_secret=secret or secrets.token_urlsafe(32),
            jwt_secret_generated=not secret,
            jwt_ttl_seconds=int(os.environ.get("JWT_TTL_SECONDS", "3600")),
            rate_limit_per_second=float(os.environ.get("RATE_LIMIT_PER_SECOND", "100")),
            tracking_rate_per_second=float(os.environ.get("TRACKING_RATE_PER_SECOND", "2")),
            max_body_bytes=int(os.environ.get("MAX_BODY_BYTES", str(1024 * 1024))),
            login_failures_per_user=int(os.environ.get("LOGIN_FAILURES_PER_USER", "5")),
            login_failures_per_address=int(os.environ.get("LOGIN_FAILURES_PER_ADDRESS", "200")),
            password_checks_at_once=int(os.environ.get("PASSWORD_CHECKS_AT_ONCE", "1")),
            forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
            identity_fresh_seconds=float(os.environ.get("IDENTITY_FRESH_SECONDS", "0")),
            drain_pause_seconds=float(os.environ.get("DRAIN_PAUSE_SECONDS", "0")),
            shutdown_grace_seconds=float(os.environ.get("SHUTDOWN_GRACE_SECONDS", "10")),
            console_dist=os.environ.get("CONSOLE_DIST", ""),
            log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
            otlp_endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
            trace_sample_ratio=float(os.environ.get("OTEL_TRACES_SAMPLER_ARG") or "1"),
        )
