"""The customers gRPC service: translates between protobuf and the use cases."""

from __future__ import annotations

import grpc

from aftersales.customers.v1 import customers_pb2, customers_pb2_grpc
from servicekit.auth import current_auth
from servicekit.timeutil import to_timestamp
from services.customers import handlers


def customer_message(profile: handlers.CustomerProfile) -> customers_pb2.Customer:
    customer = profile.customer
    return customers_pb2.Customer(
        id=customer.id,
        name=customer.name,
        phone=customer.phone,
        devices=[
            customers_pb2.Device(
                imei=d.imei,
                brand=d.brand,
                model=d.model,
                first_seen_at=to_timestamp(d.first_seen_at),
            )
            for d in profile.devices
        ],
        order_count=customer.order_count,
        last_seen_at=to_timestamp(customer.last_seen_at),
        last_store_id=customer.last_store_id,
    )


class CustomersService(customers_pb2_grpc.CustomersServiceServicer):
    def __init__(self, new_uow: handlers.NewUow) -> None:
        self.new_uow = new_uow

    async def FindCustomer(
        self, request: customers_pb2.FindCustomerRequest, context: grpc.aio.ServicerContext
    ) -> customers_pb2.Customer:
        # Any signed-in role may look a customer up: the customer base is shared chain-wide so
        # any store can serve a returning customer. The gateway masks what the caller may not see.
        current_auth()
        profile = await handlers.find_customer(self.new_uow, request.phone, request.imei)
        return customer_message(profile)


def register(server: grpc.aio.Server, new_uow: handlers.NewUow) -> None:
    customers_pb2_grpc.add_CustomersServiceServicer_to_server(CustomersService(new_uow), server)
