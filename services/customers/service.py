"""The customers service (客户): customer records shared chain-wide, their devices and service
history, notices and the tracking link, follow-up calls and complaints, personal-data requests.
What it offers, listens to and announces:

- RPCs: aftersales.customers.v1.CustomersService (protos/aftersales/customers/v1/customers.proto)
  - FindCustomer, ListCustomers, GetCustomer, UpdateCustomer, MergeCustomers: records, found by
    exact phone or IMEI chain-wide, listed within the caller's scope, phones masked except for
    a store holding an open order of the customer
  - ExportCustomer, EraseCustomer, ListPrivacyAudit: personal data (PIPL), audited
  - ListFollowUps, GetFollowUp, TakeFollowUp, RecordFollowUpAttempt: follow-up calls (回访)
  - ListComplaints, GetComplaint, AddComplaintNote, CloseComplaint: complaints
- RPCs: aftersales.customers.v1.NotificationsService (notifications.proto): notice templates,
  the delivery log, an order's tracking link, and what a link shows (see notifications/)
- RPCs: aftersales.customers.v1.BulletinsService (bulletins.proto): bulletins to staff (内部通知,
  技术公告, 培训) and their read receipts (see bulletins.py)
- Events in (ORDERS stream), one durable consumer `customers-orders` (it took over the three
  durables named below, which had one purpose each):
  - OrderReceived (`customers-order-received`): the customer (with consent and language) and
    device upserted, the order counted once
  - OrderStatusChanged (`customers-order-history`): each order's status for the history, and a
    follow-up task at pickup
  - both (`customers-notifications`): the tracking read model and one notice per real status
    change the customer cares about (an event that leaves the status sends none)
- Events out (protos/aftersales/events/v1/customer_events.proto), on
  customers.v1.<branch>.<store>.<event>: follow_up_recorded, complaint_opened, complaint_closed,
  customer_erased (orders clears its copy of the name and phone)
- Keys: the customers' data keys in the PERSONAL_DATA_KEYS bucket (servicekit.personal_data):
  OrderReceived's name and phone are opened with them; erasure destroys them
- Background: the notice sender (SMS provider), in every replica
"""

from __future__ import annotations

from pathlib import Path

import grpc

from servicekit.inbox import EventConsumer
from servicekit.personal_data import PersonalDataKeys
from servicekit.runtime import Runtime, ServiceSpec
from services.customers import bulletins_grpc, consumers, grpc_api, notifications
from services.customers.adapters.orm import metadata


def personal_keys(runtime: Runtime) -> PersonalDataKeys:
    return PersonalDataKeys(
        runtime.js,
        replicas=runtime.settings.stream_replicas,
        pepper=runtime.settings.personal_data_pepper,
    )


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    grpc_api.register(server, runtime.uow, personal_keys(runtime))
    notifications.register(server, runtime)
    bulletins_grpc.register(server, runtime.uow)


def all_consumers(runtime: Runtime) -> list[EventConsumer]:
    return consumers.consumers(runtime, personal_keys(runtime))


SPEC = ServiceSpec(
    name="customers",
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    consumers=all_consumers,
    background=notifications.background,
)
