"""The orders service (工单): work orders, their lifecycle and routes, warranty and brand
authorisation, the device passport. What it offers and announces:

- RPCs: aftersales.orders.v1.OrdersService (protos/aftersales/orders/v1/orders.proto)
- Events out: orders.v1.<branch>.<store>.order_received (OrderReceived), and
  orders.v1.<branch>.<store>.order_<status> (OrderStatusChanged) for every step that moves
  the status (one that leaves it as it was, such as a parts retry, announces nothing)
- Calls: aftersales.inventory.v1.InventoryService to reserve, issue and release parts
- Events in: customers.v1.<branch>.<store>.customer_erased (CustomerErased): the erased
  customer's orders keep no name or phone (services/orders/erasure.py);
  inventory.v1.<branch>.<store>.old_parts_returned (OldPartsReturned): settlement's held lines
  become payable (services/orders/settlement.py)
- Settlement (劳务费结算): aftersales.orders.v1.SettlementService, announcing
  orders.v1.<branch>._.claim_changed (ClaimChanged)
- Keys: the customers' data keys in the PERSONAL_DATA_KEYS bucket (servicekit.personal_data):
  OrderReceived carries the name and phone sealed only
"""

from __future__ import annotations

from pathlib import Path

import grpc

from servicekit.caller_token import load_signer
from servicekit.grpc_client import open_channel
from servicekit.personal_data import PersonalDataKeys
from servicekit.runtime import Runtime, ServiceSpec
from services.orders import base_data_api, demo, erasure, grpc_api, settlement, settlement_api
from services.orders.adapters.inventory import InventoryParts
from services.orders.adapters.orm import metadata


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    # Calls made while serving a caller carry that caller's token on; the signer is for
    # nothing else (orders does no background work with inventory).
    trust = runtime.settings.trust
    channel = open_channel(
        runtime.settings.callee_addresses["inventory"],
        "inventory",
        load_signer(trust.token_keys, "orders"),
        trust.tls,
    )
    keys = PersonalDataKeys(
        runtime.js,
        replicas=runtime.settings.stream_replicas,
        pepper=runtime.settings.personal_data_pepper,
    )
    grpc_api.register(server, runtime.uow, InventoryParts(channel), keys)
    base_data_api.register(server, runtime)
    settlement_api.register(server, runtime.uow)


SPEC = ServiceSpec(
    name="orders",
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    consumers=lambda runtime: [
        erasure.erasures_consumer(runtime),
        settlement.old_parts_consumer(runtime),
    ],
    seed_demo=demo.seed,
)
