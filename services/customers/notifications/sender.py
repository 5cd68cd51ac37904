"""The sender (发送): a loop in every customers process that takes due notices from the delivery
log, checks consent, renders the template in the customer's language, hands the message to the
SMS provider after the transaction, and records the outcome, retrying failures with back-off.

Replicas share the log safely: a round claims its notices by one conditional update (see
store.claim_due) before sending them, and a claim runs out if the sender dies, so its notices are
tried again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from servicekit import metrics
from servicekit.db import Database
from servicekit.timeutil import utc_now
from services.customers.notifications import store
from services.customers.notifications.delivery import (
    FAILED,
    SENT,
    SKIPPED_NO_CONSENT,
    Recipient,
    may_send,
)
from services.customers.notifications.providers import SmsFailed, SmsMessage, SmsProvider
from services.customers.notifications.settings import NotificationSettings
from services.customers.notifications.templates import (
    DEFAULTS,
    in_language,
    language_or_default,
    render,
)

log = logging.getLogger(__name__)

BATCH = 20
NOT_KNOWN_YET = "the order's customer is not known yet"


class NotificationSender:
    """Background work of the customers service (servicekit.runtime.BackgroundWork)."""

    name = "customers-notification-sender"

    def __init__(
        self,
        db: Database,
        settings: NotificationSettings,
        provider: SmsProvider,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.db = db
        self.settings = settings
        self.provider = provider
        self.clock = clock

    async def send_due(self) -> int:
        """One round: the notices due now that this sender could claim, claimed and read in
        one transaction, sent, and settled in another; how many it handled."""
        now = self.clock()
        until = now + timedelta(seconds=self.settings.claim_seconds)
        async with self.db.session() as session:
            claimed = await store.claim_due(session, now, until, BATCH)
            found = await store.deliveries_and_recipients(session, claimed) if claimed else []
            bodies = await store.kept_bodies(session) if found else {}
            await session.commit()
        settled = [
            (row.id, await self._outcome(row, recipient, bodies)) for row, recipient in found
        ]
        if settled:
            async with self.db.session() as session:
                for delivery_id, changes in settled:
                    await store.settle(session, delivery_id, updated_at=self.clock(), **changes)
                await session.commit()
            for _delivery_id, changes in settled:
                metrics.SMS_MESSAGES.labels(_outcome_label(changes)).inc()
        return len(claimed)

    async def _outcome(
        self, row: Any, recipient: Recipient | None, bodies: dict[tuple[str, str], str]
    ) -> dict[str, Any]:
        """Send one notice (or not) and say how its row changes."""
        if recipient is None:
            return self._failed(row, NOT_KNOWN_YET, None)
        language = language_or_default(recipient.language)
        if not may_send(recipient):
            return {
                "status": SKIPPED_NO_CONSENT,
                "customer_id": recipient.customer_id,
                "language": language,
            }
        values = in_language(json.loads(row.template_values), language)
        text = render(bodies.get((row.kind, language)) or DEFAULTS[(row.kind, language)], values)
        try:
            await self.provider.send(SmsMessage(row.id, recipient.phone, text, row.kind))
        except SmsFailed as error:
            return self._failed(row, str(error), recipient, text)
        return {
            "status": SENT,
            "attempts": row.attempts + 1,
            "customer_id": recipient.customer_id,
            "language": language,
            "provider": self.provider.name,
            "text": text,
            "sent_at": self.clock(),
            "last_error": None,
        }

    def _failed(
        self, row: Any, reason: str, recipient: Recipient | None, text: str = ""
    ) -> dict[str, Any]:
        attempts = row.attempts + 1
        retry_at = self.settings.retry.after_failure(attempts, self.clock())
        changes: dict[str, Any] = {"attempts": attempts, "last_error": reason[:500]}
        if recipient is not None:
            changes |= {
                "customer_id": recipient.customer_id,
                "language": language_or_default(recipient.language),
                "provider": self.provider.name,
                "text": text,
            }
        if retry_at is None:
            changes["status"] = FAILED
            log.warning(
                "notice given up after %d attempts: %s",
                attempts,
                reason,
                extra={"fields": {"delivery": row.id, "order": row.order_id}},
            )
        else:
            changes["next_attempt_at"] = retry_at
        return changes

    async def run(self, stopping: asyncio.Event) -> None:
        """Rounds until told to stop; a failed round (database away) waits for the next."""
        while not stopping.is_set():
            handled = 0
            try:
                handled = await self.send_due()
            except Exception:
                log.exception("sending notices failed; trying again next round")
            if handled < BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), self.settings.poll_seconds)
        await self.provider.close()


def _outcome_label(changes: dict[str, Any]) -> str:
    """A settled notice's outcome as counted on /metrics."""
    status = changes.get("status")
    if status == SENT:
        return "sent"
    if status == SKIPPED_NO_CONSENT:
        return "skipped"
    return "given_up" if status == FAILED else "failed"
