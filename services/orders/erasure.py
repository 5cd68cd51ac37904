"""Orders obeys a customer's erasure (PIPL): customers announces it (CustomerErased, after the
customer's data keys are destroyed), and the orders it names keep no name or phone.

- Events in: customers.v1.<branch>.<store>.customer_erased on stream CUSTOMERS, durable
  consumer `orders-customer-erasures`
"""

from __future__ import annotations

import logging

from aftersales.events.v1 import customer_events_pb2
from servicekit.inbox import EventConsumer
from servicekit.runtime import Runtime
from servicekit.uow import UnitOfWork
from services.orders.adapters import repository

log = logging.getLogger(__name__)

CUSTOMERS_STREAM = "CUSTOMERS"
ERASURES_CONSUMER = "orders-customer-erasures"
ERASURES_SUBJECT = "customers.v1.*.*.customer_erased"
# What an erased customer's order shows instead of their name, as customers shows it.
ERASED_NAME = "已删除"


async def customer_erased(uow: UnitOfWork, event: customer_events_pb2.CustomerErased) -> None:
    """By order id (every order customers knows), and by data key (an order taken in just
    before the erasure that customers had not heard of yet). The consumer commits."""
    cleared = await repository.forget_customer(
        uow.session, list(event.order_ids), list(event.key_ids), ERASED_NAME
    )
    log.info("customer erased: %d orders lost their name and phone", cleared)


def erasures_consumer(
    runtime: Runtime, name: str = ERASURES_CONSUMER, subject: str = ERASURES_SUBJECT
) -> EventConsumer:
    return runtime.consumer(
        name,
        CUSTOMERS_STREAM,
        [subject],
        {
            customer_events_pb2.CustomerErased.DESCRIPTOR.full_name: (
                customer_events_pb2.CustomerErased,
                customer_erased,
            )
        },
    )
