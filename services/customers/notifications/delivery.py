"""The rules of sending a notice (通知发送): who gets one, and when a failed one is tried again.
Pure: no I/O and no clock (the caller passes `now`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

QUEUED = "queued"
SENT = "sent"
FAILED = "failed"
SKIPPED_NO_CONSENT = "skipped_no_consent"
STATUSES = (QUEUED, SENT, FAILED, SKIPPED_NO_CONSENT)

DEFAULT_RETRY_DELAYS = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
)
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class RetrySchedule:
    """Delays between attempts: the n-th failure waits delays[n-1] (the last one repeats), and
    after `max_attempts` attempts the notice is given up on."""

    delays: tuple[timedelta, ...] = DEFAULT_RETRY_DELAYS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def __post_init__(self) -> None:
        if not self.delays or any(d < timedelta(0) for d in self.delays):
            raise ValueError("retry delays must be given and not negative")
        if self.max_attempts < 1:
            raise ValueError("max attempts must be at least 1")

    def after_failure(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after `attempts` attempts have failed; None: give up."""
        if attempts >= self.max_attempts:
            return None
        return now + self.delays[min(attempts, len(self.delays)) - 1]


@dataclass(frozen=True)
class Recipient:
    """The customer a notice is for, as the customers table knows them now."""

    customer_id: str
    phone: str
    message_consent: bool
    language: str


def may_send(recipient: Recipient) -> bool:
    """No message without the customer's consent to service messages, nor without a number."""
    return recipient.message_consent and bool(recipient.phone)


def parse_delays(text: str) -> tuple[timedelta, ...]:
    """`30,120,600` (seconds, commas) as delays: configuration, so tests can run fast."""
    try:
        delays = tuple(timedelta(seconds=float(part)) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(
            f"retry delays must be seconds separated by commas, not {text!r}"
        ) from None
    if not delays:
        raise ValueError("retry delays must name at least one delay")
    return delays
