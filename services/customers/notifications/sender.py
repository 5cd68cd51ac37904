"""The sender (发送): a loop in every customers process that takes due notices from the delivery
log, checks consent, renders the template in the customer's language, hands the message to the
SMS provider after the transaction, and records the outcome, retrying failures with back-off.

Replicas share the log safely: a notice is claimed by a conditional update (see store.claim)
before it is sent, and the claim runs out if the sender dies, so the notice is tried again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

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
        """One round: every notice due now that this sender could claim; how many it handled."""
        now = self.clock()
        until = now + timedelta(seconds=self.settings.claim_seconds)
        async with self.db.session() as session:
            due = await store.due_notices(session, now, BATCH)
            await session.commit()
            claimed = []
            for row in due:
                # One claim a transaction: no sender holds one row while waiting for another.
                if await store.claim(session, row.id, row.next_attempt_at, until):
                    claimed.append(row.id)
                await session.commit()
        for delivery_id in claimed:
            await self._handle(delivery_id)
        return len(claimed)

    async def _handle(self, delivery_id: str) -> None:
        async with self.db.session() as session:
            row, recipient = await store.delivery_and_recipient(session, delivery_id)
            text = ""
            if recipient is not None and may_send(recipient):
                language = language_or_default(recipient.language)
                body = await store.kept_body(session, row.kind, language)
                values = in_language(json.loads(row.template_values), language)
                text = render(body or DEFAULTS[(row.kind, language)], values)
        if recipient is None:
            await self._failed(row, NOT_KNOWN_YET, None)
            return
        if not may_send(recipient):
            await self._settle(
                row.id,
                status=SKIPPED_NO_CONSENT,
                customer_id=recipient.customer_id,
                language=language_or_default(recipient.language),
            )
            return
        message = SmsMessage(row.id, recipient.phone, text, row.kind)
        try:
            await self.provider.send(message)
        except SmsFailed as error:
            await self._failed(row, str(error), recipient, text)
            return
        now = self.clock()
        await self._settle(
            row.id,
            status=SENT,
            attempts=row.attempts + 1,
            customer_id=recipient.customer_id,
            language=language_or_default(recipient.language),
            provider=self.provider.name,
            text=text,
            sent_at=now,
            last_error=None,
        )

    async def _failed(
        self, row: Any, reason: str, recipient: Recipient | None, text: str = ""
    ) -> None:
        attempts = row.attempts + 1
        now = self.clock()
        retry_at = self.settings.retry.after_failure(attempts, now)
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
        await self._settle(row.id, **changes)

    async def _settle(self, delivery_id: str, **changes: Any) -> None:
        async with self.db.session() as session:
            await store.settle(session, delivery_id, updated_at=self.clock(), **changes)
            await session.commit()

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
