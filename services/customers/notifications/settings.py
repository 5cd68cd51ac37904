"""Notification and tracking settings from environment variables, with local defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from servicekit.settings import data_dir
from services.customers.notifications.delivery import (
    DEFAULT_MAX_ATTEMPTS,
    RetrySchedule,
    parse_delays,
)
from services.customers.notifications.tracking import DEFAULT_DAYS_AFTER_PICKUP

PROVIDERS = ("local", "http")


@dataclass(frozen=True)
class NotificationSettings:
    # local: one JSON line a message in `outbox_file` (and the log); http: an SMS gateway.
    provider: str = "local"
    outbox_file: Path = field(default_factory=lambda: data_dir() / "sms-outbox.jsonl")
    http_url: str = ""
    http_token: str = ""
    http_timeout_seconds: float = 5.0
    retry: RetrySchedule = field(default_factory=RetrySchedule)
    # How often the sender looks for notices that are due.
    poll_seconds: float = 1.0
    # A sender that claimed a notice and died gives it up after this long.
    claim_seconds: float = 120.0
    # The tracking link is this plus the order's token.
    tracking_base_url: str = "http://127.0.0.1:8080/track/"
    tracking_days_after_pickup: int = DEFAULT_DAYS_AFTER_PICKUP

    @classmethod
    def from_env(cls) -> NotificationSettings:
        provider = os.environ.get("SMS_PROVIDER", "local")
        if provider not in PROVIDERS:
            raise SystemExit(f"SMS_PROVIDER must be one of {', '.join(PROVIDERS)}, not {provider}")
        http_url = os.environ.get("SMS_HTTP_URL", "")
        if provider == "http" and not http_url:
            raise SystemExit("SMS_PROVIDER=http needs SMS_HTTP_URL")
        delays = os.environ.get("NOTIFY_RETRY_DELAYS_SECONDS")
        try:
            retry = RetrySchedule(
                parse_delays(delays) if delays else RetrySchedule().delays,
                int(os.environ.get("NOTIFY_MAX_ATTEMPTS", str(DEFAULT_MAX_ATTEMPTS))),
            )
        except ValueError as error:
            raise SystemExit(
                f"NOTIFY_RETRY_DELAYS_SECONDS / NOTIFY_MAX_ATTEMPTS: {error}"
            ) from None
        outbox = os.environ.get("SMS_OUTBOX_FILE")
        return cls(
            provider=provider,
            outbox_file=Path(outbox) if outbox else data_dir() / "sms-outbox.jsonl",
            http_url=http_url,
            http_token=os.environ.get("SMS_HTTP_TOKEN", ""),
            http_timeout_seconds=float(os.environ.get("SMS_HTTP_TIMEOUT_SECONDS", "5")),
            retry=retry,
            poll_seconds=float(os.environ.get("NOTIFY_POLL_SECONDS", "1")),
            tracking_base_url=os.environ.get("TRACKING_BASE_URL", "http://127.0.0.1:8080/track/"),
            tracking_days_after_pickup=int(
                os.environ.get("TRACKING_DAYS_AFTER_PICKUP", str(DEFAULT_DAYS_AFTER_PICKUP))
            ),
        )
