"""SMS providers (短信通道): where a notice goes out. `local` appends one JSON line a message to a
file and logs it (for `make run` and the tests); `http` posts to a real SMS gateway."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from servicekit.identifiers import mask_phone
from servicekit.timeutil import utc_now
from services.customers.notifications.settings import NotificationSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmsMessage:
    # Our delivery id: a gateway that dedupes on it never sends a retried notice twice.
    reference: str
    phone: str
    text: str
    kind: str = ""


class SmsFailed(Exception):
    """The provider did not take the message; the reason goes into the delivery log."""


class SmsProvider(Protocol):
    name: str

    async def send(self, message: SmsMessage) -> None:
        """Hand the message over; raise SmsFailed when the provider did not take it."""

    async def close(self) -> None: ...


class LocalFileProvider:
    """Writes each message as one JSON line to a file, and logs it with the number masked."""

    name = "local"

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, message: SmsMessage) -> None:
        line = json.dumps(
            {
                "reference": message.reference,
                "kind": message.kind,
                "to": message.phone,
                "text": message.text,
                "at": utc_now().isoformat(),
            },
            ensure_ascii=False,
        )
        try:
            await asyncio.to_thread(self._append, line)
        except OSError as error:
            raise SmsFailed(f"cannot write {self.path}: {error}") from error
        log.info(
            "sms written",
            extra={"fields": {"reference": message.reference, "to": mask_phone(message.phone)}},
        )

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(line + "\n")

    async def close(self) -> None:
        return None


class HttpProvider:
    """Posts `{"to", "text", "reference"}` as JSON with a bearer token; any 2xx answer means
    the gateway took the message, anything else (or no answer in time) is a failure."""

    name = "http"

    def __init__(self, url: str, token: str, timeout_seconds: float) -> None:
        self.url = url
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(headers=headers, timeout=timeout_seconds)

    async def send(self, message: SmsMessage) -> None:
        body = {"to": message.phone, "text": message.text, "reference": message.reference}
        try:
            reply = await self.client.post(self.url, json=body)
        except httpx.HTTPError as error:
            raise SmsFailed(f"{type(error).__name__}: {error}"[:500]) from error
        if not reply.is_success:
            raise SmsFailed(f"HTTP {reply.status_code}: {reply.text[:200]}")

    async def close(self) -> None:
        await self.client.aclose()


def provider_from(settings: NotificationSettings) -> SmsProvider:
    if settings.provider == "http":
        return HttpProvider(settings.http_url, settings.http_token, settings.http_timeout_seconds)
    return LocalFileProvider(settings.outbox_file)
