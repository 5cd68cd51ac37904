"""Dead letters (死信): a message a consumer can never handle (undecodable, or an event that breaks
a rule, or one that keeps failing while its database answers) is copied to the DEAD_LETTERS
stream under `deadletters.v1.<service>.<consumer>`, with its payload and headers as they
were plus headers saying why, and only then terminated on its own stream: nothing is lost.

Replay publishes the letter again to its original subject, addressed to that one consumer:
- `Event-Id` carries the event id, which the consumer's inbox records, so an event the consumer
  handled after all is skipped rather than applied twice;
- `Nats-Msg-Id` becomes `<event id>:replay:<letter seq>`, so the original stream does not drop
  it as a duplicate of the first publish, yet drops a second replay of the same letter;
- `Replay-For` names the consumer: the other consumers of the subject ack it unread.
The letter is deleted once the stream has acknowledged the replay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import APIError, BadRequestError, NotFoundError

from servicekit.bus import DEAD_LETTERS_STREAM
from servicekit.outbox import MSG_ID_HEADER
from servicekit.timeutil import utc_now

# The event id a consumer's inbox records, when it differs from Nats-Msg-Id (a replay).
EVENT_ID_HEADER = "Event-Id"
# A replayed message is for this consumer only.
REPLAY_FOR_HEADER = "Replay-For"

REASON_HEADER = "Dead-Letter-Reason"
KIND_HEADER = "Dead-Letter-Kind"
CONSUMER_HEADER = "Dead-Letter-Consumer"
SUBJECT_HEADER = "Dead-Letter-Subject"
STREAM_HEADER = "Dead-Letter-Stream"
SEQUENCE_HEADER = "Dead-Letter-Sequence"
MSG_ID_KEPT_HEADER = "Dead-Letter-Msg-Id"
DELIVERIES_HEADER = "Dead-Letter-Deliveries"
AT_HEADER = "Dead-Letter-At"
_OURS = (
    REASON_HEADER,
    KIND_HEADER,
    CONSUMER_HEADER,
    SUBJECT_HEADER,
    STREAM_HEADER,
    SEQUENCE_HEADER,
    MSG_ID_KEPT_HEADER,
    DELIVERIES_HEADER,
    AT_HEADER,
)
# Set by the publisher to check which stream takes a message; not part of what was sent.
_EXPECTED_STREAM_HEADER = "Nats-Expected-Stream"
# The server says a deleted message is gone in one of two ways.
_GONE = (10043, 10057)  # sequence not found, no message found
# Header values are one line; a reason is a short message, not a traceback.
_REASON_LIMIT = 500


def subject_for(service: str, consumer: str) -> str:
    return f"deadletters.v1.{service}.{consumer}"


@dataclass(frozen=True)
class Original:
    """Where a message came from, as its consumer saw it."""

    subject: str
    stream: str
    sequence: int
    deliveries: int
    payload: bytes
    headers: dict[str, str]


async def send(
    js: JetStreamContext, service: str, consumer: str, original: Original, kind: str, reason: str
) -> None:
    """Publish a dead letter and wait for the stream's ack (raises if it does not come)."""
    headers = {
        k: v
        for k, v in original.headers.items()
        if k not in (MSG_ID_HEADER, _EXPECTED_STREAM_HEADER)
    }
    if MSG_ID_HEADER in original.headers:
        headers[MSG_ID_KEPT_HEADER] = original.headers[MSG_ID_HEADER]
    headers.update(
        {
            # A consumer that sends the same message twice (a crash before its term) is
            # dropped by the stream's duplicate window.
            MSG_ID_HEADER: f"{consumer}:{original.stream}:{original.sequence}",
            REASON_HEADER: " ".join(reason.split())[:_REASON_LIMIT] or kind,
            KIND_HEADER: kind,
            CONSUMER_HEADER: consumer,
            SUBJECT_HEADER: original.subject,
            STREAM_HEADER: original.stream,
            SEQUENCE_HEADER: str(original.sequence),
            DELIVERIES_HEADER: str(original.deliveries),
            AT_HEADER: utc_now().isoformat(),
        }
    )
    await js.publish(
        subject_for(service, consumer),
        original.payload,
        stream=DEAD_LETTERS_STREAM,
        headers=headers,
    )


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    consumer: str
    kind: str
    reason: str
    subject: str
    stream: str
    stream_sequence: int
    at: datetime | None
    payload: bytes
    original_headers: dict[str, str]

    @property
    def event_id(self) -> str:
        headers = self.original_headers
        return headers.get(EVENT_ID_HEADER) or headers.get(MSG_ID_HEADER, "")

    @classmethod
    def from_stream(cls, message: RawStreamMsg) -> DeadLetter:
        headers = dict(message.headers or {})
        original = {
            k: v
            for k, v in headers.items()
            if k not in _OURS and k not in (MSG_ID_HEADER, _EXPECTED_STREAM_HEADER)
        }
        if MSG_ID_KEPT_HEADER in headers:
            original[MSG_ID_HEADER] = headers[MSG_ID_KEPT_HEADER]
        return cls(
            seq=message.seq or 0,
            consumer=headers.get(CONSUMER_HEADER, ""),
            kind=headers.get(KIND_HEADER, ""),
            reason=headers.get(REASON_HEADER, ""),
            subject=headers.get(SUBJECT_HEADER, ""),
            stream=headers.get(STREAM_HEADER, ""),
            stream_sequence=int(headers.get(SEQUENCE_HEADER, "0")),
            at=datetime.fromisoformat(headers[AT_HEADER]) if AT_HEADER in headers else None,
            payload=message.data or b"",
            original_headers=original,
        )


async def letters(js: JetStreamContext, service: str) -> AsyncIterator[DeadLetter]:
    """The service's dead letters, oldest first."""
    seq = 1
    while True:
        try:
            message = await js.get_msg(
                DEAD_LETTERS_STREAM, seq=seq, subject=f"deadletters.v1.{service}.>", next=True
            )
        except NotFoundError:
            return
        letter = DeadLetter.from_stream(message)
        yield letter
        seq = letter.seq + 1


async def letter(js: JetStreamContext, service: str, seq: int) -> DeadLetter:
    """One of the service's dead letters; LookupError when there is none at `seq`."""
    try:
        message = await js.get_msg(DEAD_LETTERS_STREAM, seq=seq)
    except (NotFoundError, BadRequestError):
        # A sequence past the end is a bad request to the server; a deleted one is not found.
        raise LookupError(f"no dead letter {seq}") from None
    if not (message.subject or "").startswith(f"deadletters.v1.{service}."):
        raise LookupError(f"dead letter {seq} is not one of {service}'s")
    return DeadLetter.from_stream(message)


async def replay(js: JetStreamContext, letter: DeadLetter) -> None:
    """Deliver the letter again to its consumer (see the module's note), then delete it."""
    headers = dict(letter.original_headers)
    event_id = letter.event_id
    if event_id:
        headers[EVENT_ID_HEADER] = event_id
    headers[MSG_ID_HEADER] = f"{event_id}:replay:{letter.seq}"
    headers[REPLAY_FOR_HEADER] = letter.consumer
    await js.publish(letter.subject, letter.payload, stream=letter.stream, headers=headers)
    try:
        await js.delete_msg(DEAD_LETTERS_STREAM, letter.seq)
    except APIError as error:
        # Replayed by someone else meanwhile: their replay and ours are one message.
        if error.err_code not in _GONE:
            raise
