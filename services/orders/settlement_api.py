"""Manufacturer settlement (劳务费结算) over gRPC: aftersales.orders.v1.SettlementService, the
use cases of services/orders/settlement.py translated from and to protobuf."""

from __future__ import annotations

import grpc

from aftersales.orders.v1 import orders_pb2, orders_pb2_grpc
from servicekit.auth import current_auth
from servicekit.timeutil import to_timestamp
from services.orders import settlement
from services.orders.domain.settlement import Claim
from services.orders.handlers import NewUow


def claim_message(claim: Claim, with_lines: bool = True) -> orders_pb2.Claim:
    message = orders_pb2.Claim(
        id=claim.id,
        manufacturer=claim.manufacturer,
        branch_id=claim.branch_id,
        month=claim.month,
        supplement=claim.supplement,
        status=claim.status,
        version=claim.version,
        claimed_fen=claim.claimed_fen,
        accepted_fen=claim.accepted_fen,
        paid_fen=claim.paid_fen,
        payable_fen=claim.payable_fen,
        held_fen=claim.held_fen,
        built_at=to_timestamp(claim.built_at),
        built_by=claim.built_by,
        payments=[
            orders_pb2.ClaimPayment(
                amount_fen=p.amount_fen,
                paid_on=p.paid_on.isoformat(),
                recorded_by=p.recorded_by,
                recorded_at=to_timestamp(p.recorded_at),
            )
            for p in claim.payments
        ],
    )
    if with_lines:
        message.lines.extend(
            orders_pb2.SettlementLine(
                order_id=x.order_id,
                number=x.number,
                store_id=x.store_id,
                repair_level=x.repair_level,
                labour_fen=x.labour_fen,
                parts_fen=x.parts_fen,
                claimed_fen=x.claimed_fen,
                state=x.state,
                old_parts_owed=x.old_parts_owed,
                decision=x.decision,
                reason_code=x.reason_code,
                accepted_fen=x.accepted_fen,
                closed_at=to_timestamp(x.closed_at),
            )
            for x in claim.lines
        )
    for name, moment in (
        ("submitted_at", claim.submitted_at),
        ("decided_at", claim.decided_at),
        ("paid_at", claim.paid_at),
    ):
        if moment is not None:
            getattr(message, name).CopyFrom(to_timestamp(moment))
    return message


class SettlementService(orders_pb2_grpc.SettlementServiceServicer):
    def __init__(self, new_uow: NewUow) -> None:
        self.new_uow = new_uow

    async def ListClaims(
        self, request: orders_pb2.ListClaimsRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.ListClaimsResponse:
        claims, next_token = await settlement.list_claims(
            self.new_uow,
            current_auth(),
            request.branch_id,
            request.manufacturer,
            request.month,
            request.status,
            request.page_size,
            request.page_token,
        )
        return orders_pb2.ListClaimsResponse(
            claims=[claim_message(c, False) for c in claims], next_page_token=next_token
        )

    async def BuildClaim(
        self, request: orders_pb2.BuildClaimRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.Claim:
        claim = await settlement.build_claim(
            self.new_uow, current_auth(), request.manufacturer, request.branch_id, request.month
        )
        return claim_message(claim)

    async def GetClaim(
        self, request: orders_pb2.GetClaimRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.Claim:
        return claim_message(await settlement.get_claim(self.new_uow, current_auth(), request.id))

    async def SubmitClaim(
        self, request: orders_pb2.SubmitClaimRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.Claim:
        claim = await settlement.submit_claim(
            self.new_uow, current_auth(), request.id, request.expected_version
        )
        return claim_message(claim)

    async def DecideClaim(
        self, request: orders_pb2.DecideClaimRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.Claim:
        claim = await settlement.decide_claim(
            self.new_uow, current_auth(), request.id, request.expected_version, request.csv
        )
        return claim_message(claim)

    async def RecordClaimPayment(
        self, request: orders_pb2.RecordClaimPaymentRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.Claim:
        claim = await settlement.record_payment(
            self.new_uow,
            current_auth(),
            request.id,
            request.expected_version,
            request.amount_fen,
            request.paid_on,
            request.request_id,
        )
        return claim_message(claim)


def register(server: grpc.aio.Server, new_uow: NewUow) -> None:
    orders_pb2_grpc.add_SettlementServiceServicer_to_server(SettlementService(new_uow), server)
