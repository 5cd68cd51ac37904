"""Who may say what on the event bus: one NATS user per service, allowed to publish only its
own events and to read only the streams it consumes. This table is the one source of the
permissions: `nats_authorization` renders it into the nats-server configuration that the tests,
`make run` (servicekit.testing.NatsServer) and Kubernetes (k8s/components/nats*, regenerated
by `python -m devtools.bus_config`) all use, so a service that publishes outside its subjects
fails in the tests, not in production.

To let a service use more of the bus, extend its `BusUser` here: `consumes` for a stream it
reads with durable consumers, `key_value` for a JetStream key-value bucket it keeps, `owns` for
a stream it creates and publishes to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from servicekit.bus import ARCHIVE_STREAM, DEAD_LETTERS_STREAM, STREAMS, inbox_prefix
from servicekit.personal_data import BUCKET as PERSONAL_DATA_BUCKET

API = "$JS.API"
OPERATOR = "operator"


@dataclass(frozen=True)
class Consumes:
    """A stream a service reads with durable pull consumers of these names; `formers` are the
    durables they took over, which a consumer reads (where they stood) and deletes."""

    stream: str
    durables: tuple[str, ...]
    formers: tuple[str, ...] = ()


@dataclass(frozen=True)
class BusUser:
    name: str
    # Streams it creates (and brings to our settings) and publishes its events to.
    owns: tuple[str, ...] = ()
    consumes: tuple[Consumes, ...] = ()
    # JetStream key-value buckets it creates, reads and writes.
    key_value: tuple[str, ...] = ()
    # Dead letters of its own consumers (servicekit.dead_letters): it writes
    # `deadletters.v1.<name>.>`; every service makes the stream, whoever starts first.
    dead_letters: bool = True
    # Keeps the archive of every event (servicekit.bus.ARCHIVE_STREAM: creates it, brings it
    # to our settings) and reads it with short-lived consumers to rebuild its read models.
    archive: bool = False
    extra_publish: tuple[str, ...] = ()
    extra_subscribe: tuple[str, ...] = ()

    def publish(self) -> list[str]:
        allowed = [f"{API}.INFO"]
        for stream in self.streams_made():
            allowed += [f"{API}.STREAM.CREATE.{stream}", f"{API}.STREAM.UPDATE.{stream}"]
        for stream in self.streams_read():
            # Made when missing (its owner may start later); changed only by its owner.
            allowed += [f"{API}.STREAM.CREATE.{stream}", f"{API}.STREAM.INFO.{stream}"]
        for stream in self.owns:
            allowed += STREAMS[stream]
        for consumed in self.consumes:
            for durable in consumed.durables:
                allowed += _consumer_subjects(consumed.stream, durable)
            for former in consumed.formers:
                allowed += [
                    f"{API}.CONSUMER.INFO.{consumed.stream}.{former}",
                    f"{API}.CONSUMER.DELETE.{consumed.stream}.{former}",
                ]
        if self.dead_letters:
            # Listing and showing them (`dead-letters list|show`); replaying them, which
            # deletes the letter, is the operator's.
            allowed += [
                f"deadletters.v1.{self.name}.>",
                f"{API}.STREAM.MSG.GET.{DEAD_LETTERS_STREAM}",
            ]
        if self.archive:
            # Whether it holds all its sources hold (servicekit.replay.wait_for_sources).
            allowed += [f"{API}.STREAM.INFO.{stream}" for stream in STREAMS]
            allowed += [
                f"{API}.STREAM.MSG.GET.{ARCHIVE_STREAM}",
                f"{API}.CONSUMER.CREATE.{ARCHIVE_STREAM}.>",
                f"{API}.CONSUMER.INFO.{ARCHIVE_STREAM}.*",
                f"{API}.CONSUMER.MSG.NEXT.{ARCHIVE_STREAM}.*",
                f"{API}.CONSUMER.DELETE.{ARCHIVE_STREAM}.*",
            ]
        for bucket in self.key_value:
            allowed += _key_value_subjects(bucket)
        return _unique([*allowed, *self.extra_publish])

    def subscribe(self) -> list[str]:
        allowed = [f"{inbox_prefix(self.name)}.>"]
        for bucket in self.key_value:
            allowed.append(f"$KV.{bucket}.>")
        return _unique([*allowed, *self.extra_subscribe])

    def streams_made(self) -> list[str]:
        """The event streams (servicekit.bus) it creates and brings to our settings."""
        return [
            *self.owns,
            *([DEAD_LETTERS_STREAM] if self.dead_letters else []),
            *([ARCHIVE_STREAM] if self.archive else []),
        ]

    def streams_read(self) -> list[str]:
        """The event streams it reads, its own and those it consumes."""
        return _unique([*self.streams_made(), *(c.stream for c in self.consumes)])


def _consumer_subjects(stream: str, durable: str) -> list[str]:
    # The client names the filter subject after the consumer when there is one filter.
    create = f"{API}.CONSUMER.CREATE.{stream}.{durable}"
    return [
        create,
        f"{create}.>",
        f"{API}.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
        f"{API}.CONSUMER.INFO.{stream}.{durable}",
        f"{API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


def _key_value_subjects(bucket: str) -> list[str]:
    stream = f"KV_{bucket}"
    return [
        f"{API}.STREAM.CREATE.{stream}",
        f"{API}.STREAM.UPDATE.{stream}",
        f"{API}.STREAM.INFO.{stream}",
        f"$KV.{bucket}.>",
        f"{API}.DIRECT.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}.>",
        f"{API}.STREAM.MSG.GET.{stream}",
        # Erasing a key purges its subject from the stream, so no revision remains.
        f"{API}.STREAM.PURGE.{stream}",
        # Watching and listing keys use short-lived consumers of the bucket's stream.
        f"{API}.CONSUMER.CREATE.{stream}",
        f"{API}.CONSUMER.CREATE.{stream}.>",
        f"{API}.CONSUMER.INFO.{stream}.>",
        f"{API}.CONSUMER.DELETE.{stream}.>",
        f"$JS.ACK.{stream}.>",
    ]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# The consumers each service runs (their durable names are in the services' consumer modules;
# tests/test_bus_permissions.py checks the two agree).
SERVICES: dict[str, BusUser] = {
    "orders": BusUser(
        "orders",
        owns=("ORDERS",),
        consumes=(
            Consumes("CUSTOMERS", ("orders-customer-erasures",)),
            Consumes("INVENTORY", ("orders-old-parts",)),
        ),
        key_value=(PERSONAL_DATA_BUCKET,),
    ),
    "inventory": BusUser(
        "inventory",
        owns=("INVENTORY",),
        consumes=(Consumes("ORDERS", ("inventory-order-holds",)),),
    ),
    "customers": BusUser(
        "customers",
        owns=("CUSTOMERS",),
        key_value=(PERSONAL_DATA_BUCKET,),
        consumes=(
            Consumes(
                "ORDERS",
                ("customers-orders",),
                formers=(
                    "customers-order-received",
                    "customers-order-history",
                    "customers-notifications",
                ),
            ),
        ),
    ),
    "reporting": BusUser(
        "reporting",
        consumes=(
            Consumes("ORDERS", ("reporting-orders",)),
            Consumes("CUSTOMERS", ("reporting-customers",)),
            Consumes("INVENTORY", ("reporting-inventory",)),
        ),
        archive=True,
    ),
}

# The person who replays dead letters (`python -m services.<name> dead-letters ...`): a replay
# puts the event back on its original subject, which no service may do for another's events.
# No Deployment holds this credential.
OPERATOR_USER = BusUser(
    OPERATOR,
    dead_letters=False,
    extra_publish=(
        f"{API}.INFO",
        *(f"{API}.STREAM.INFO.{stream}" for stream in (*STREAMS, DEAD_LETTERS_STREAM)),
        f"{API}.STREAM.MSG.GET.{DEAD_LETTERS_STREAM}",
        f"{API}.STREAM.MSG.DELETE.{DEAD_LETTERS_STREAM}",
        *(subject for subjects in STREAMS.values() for subject in subjects),
    ),
)

USERS: dict[str, BusUser] = {**SERVICES, OPERATOR: OPERATOR_USER}


def user(name: str) -> BusUser:
    try:
        return USERS[name]
    except KeyError:
        raise KeyError(f"no NATS user {name!r} in servicekit.bus_permissions") from None


def nats_authorization(
    passwords: Mapping[str, str],
    extra: Iterable[str] = (),
    users: Mapping[str, BusUser] = USERS,
) -> str:
    """The `authorization` block of a nats-server configuration: each of `users` in
    `passwords` (name -> its password, or a `$VARIABLE` the server reads from its environment)
    with its permissions. `extra` are ready-made user entries (a test harness)."""
    entries = [_user_entry(users[name], passwords[name]) for name in users if name in passwords]
    body = ",\n".join(f"    {entry}" for entry in [*entries, *extra])
    return f"authorization {{\n  users = [\n{body}\n  ]\n}}\n"


def password_variable(name: str) -> str:
    """The environment variable the NATS server reads a user's password from (Kubernetes)."""
    return f"NATS_PASSWORD_{name.upper()}"


def _user_entry(bus_user: BusUser, password: str) -> str:
    # A `$NAME` unquoted is a variable the server resolves; a password itself is quoted.
    secret = password if password.startswith("$") else quoted(password)
    return (
        f"{{user: {quoted(bus_user.name)}, password: {secret}, permissions: {{"
        f"publish: {{allow: {_list(bus_user.publish())}}}, "
        f"subscribe: {{allow: {_list(bus_user.subscribe())}}}}}}}"
    )


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _list(items: Iterable[str]) -> str:
    return "[" + ", ".join(quoted(item) for item in items) + "]"
