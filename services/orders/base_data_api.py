"""HQ base data (基础数据) over gRPC: fault codes, labour prices, authorisations, warranty
policies and approval thresholds. hq_admin writes; every change moves the base data version on
and is audited in the same transaction, so every replica's cache sees it on its next use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, fields
from typing import Any, Literal, get_args

import grpc
from sqlalchemy.ext.asyncio import AsyncConnection

from aftersales.orders.v1 import base_data_pb2 as pb
from aftersales.orders.v1 import base_data_pb2_grpc
from servicekit import paging
from servicekit.auth import AuthContext, current_auth, require_role
from servicekit.errors import NotFound, invalid
from servicekit.runtime import Runtime
from servicekit.timeutil import to_timestamp, utc_now
from services.orders.adapters import base_data as store
from services.orders.domain import base_data as rules
from services.orders.domain.base_data import FaultCode
from services.orders.domain.lifecycle import DEFAULT_APPROVAL_THRESHOLD_FEN
from services.orders.domain.warranty import WarrantyPolicy
from services.orders.handlers import NewUow

WRITERS = ("hq_admin",)
AUDITORS = ("hq_admin",)
POLICY_FIELDS = tuple(f.name for f in fields(WarrantyPolicy))
ChangeKind = Literal[
    "brand",
    "model",
    "fault_code",
    "labour_price",
    "warranty_policy",
    "authorisation",
    "approval_threshold",
]
"""What a change is of, as the audit names it."""
CHANGE_KINDS: tuple[str, ...] = get_args(ChangeKind)
CHANGES_PAGE_SIZE = 50
CHANGES_MAX_PAGE_SIZE = 200

Write = Callable[[AsyncConnection], Awaitable[None]]


def _fault_code_message(code: FaultCode, version: int) -> pb.FaultCode:
    return pb.FaultCode(
        brand=code.brand,
        kind=code.kind,
        code=code.code,
        description_zh=code.description_zh,
        description_en=code.description_en,
        active=code.active,
        version=version,
    )


def _policy_message(brand: str, policy: WarrantyPolicy, version: int) -> pb.WarrantyPolicy:
    return pb.WarrantyPolicy(brand=brand, version=version, **asdict(policy))


class BaseDataService(base_data_pb2_grpc.BaseDataServiceServicer):
    def __init__(self, new_uow: NewUow) -> None:
        self.new_uow = new_uow

    async def _change(
        self,
        auth: AuthContext,
        what: ChangeKind,
        key: str,
        value: Mapping[str, Any],
        expected_version: int,
        write: Write,
        brand: str = "",
    ) -> int:
        """Write one change with its audit and the version moved on; the new version."""
        async with self.new_uow() as uow:
            session = uow.session
            if brand and not await store.brand_exists(session, brand):
                raise invalid("brand", f"unknown brand {brand!r}")
            version = await store.record_change(
                session, auth.user_id, utc_now(), what, key, value, expected_version
            )
            await write(session)
            await uow.commit()
        return version

    async def PutBrand(
        self, request: pb.PutBrandRequest, context: grpc.aio.ServicerContext
    ) -> pb.BrandEntry:
        auth = current_auth()
        require_role(auth, WRITERS)
        code, name = request.brand.code, request.brand.name.strip()
        rules.check_catalog_entry(code, name)

        async def write(session: AsyncConnection) -> None:
            await store.put_brand(session, code, name)

        version = await self._change(
            auth, "brand", code, {"name": name}, request.expected_version, write
        )
        return pb.BrandEntry(code=code, name=name, version=version)

    async def PutModel(
        self, request: pb.PutModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelEntry:
        auth = current_auth()
        require_role(auth, WRITERS)
        m = request.model
        name = m.name.strip()
        rules.check_catalog_entry(m.code, name)

        async def write(session: AsyncConnection) -> None:
            await store.put_model(session, m.brand, m.code, name)

        version = await self._change(
            auth,
            "model",
            f"{m.brand}/{m.code}",
            {"name": name},
            request.expected_version,
            write,
            brand=m.brand,
        )
        return pb.ModelEntry(brand=m.brand, code=m.code, name=name, version=version)

    async def ListFaultCodes(
        self, request: pb.ListFaultCodesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListFaultCodesResponse:
        current_auth()
        async with self.new_uow() as uow:
            version = await store.current_version(uow.session)
            codes = await store.fault_code_rows(
                uow.session, request.brand, request.kind, request.active_only
            )
        return pb.ListFaultCodesResponse(
            codes=[_fault_code_message(c, 0) for c in codes], version=version
        )

    async def PutFaultCode(
        self, request: pb.PutFaultCodeRequest, context: grpc.aio.ServicerContext
    ) -> pb.FaultCode:
        auth = current_auth()
        require_role(auth, WRITERS)
        m = request.code
        code = FaultCode(
            m.brand, m.kind, m.code, m.description_zh.strip(), m.description_en.strip(), m.active
        )
        rules.check_fault_code(code)

        async def write(session: AsyncConnection) -> None:
            await store.put_fault_code(session, code)

        version = await self._change(
            auth,
            "fault_code",
            f"{code.brand}/{code.kind}/{code.code}",
            asdict(code),
            request.expected_version,
            write,
            brand=code.brand,
        )
        return _fault_code_message(code, version)

    async def ListLabourPrices(
        self, request: pb.ListLabourPricesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListLabourPricesResponse:
        current_auth()
        async with self.new_uow() as uow:
            version = await store.current_version(uow.session)
            rows = await store.labour_price_rows(uow.session, request.brand)
        return pb.ListLabourPricesResponse(
            prices=[pb.LabourPrice(brand=b, repair_level=lv, amount_fen=f) for b, lv, f in rows],
            version=version,
        )

    async def PutLabourPrice(
        self, request: pb.PutLabourPriceRequest, context: grpc.aio.ServicerContext
    ) -> pb.LabourPrice:
        auth = current_auth()
        require_role(auth, WRITERS)
        price = request.price
        rules.check_labour_price(price.repair_level, price.amount_fen)

        async def write(session: AsyncConnection) -> None:
            await store.put_labour_price(session, price.brand, price.repair_level, price.amount_fen)

        version = await self._change(
            auth,
            "labour_price",
            f"{price.brand}/{price.repair_level}",
            {"amount_fen": price.amount_fen},
            request.expected_version,
            write,
            brand=price.brand,
        )
        return pb.LabourPrice(
            brand=price.brand,
            repair_level=price.repair_level,
            amount_fen=price.amount_fen,
            version=version,
        )

    async def ListWarrantyPolicies(
        self, request: pb.ListWarrantyPoliciesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListWarrantyPoliciesResponse:
        current_auth()
        async with self.new_uow() as uow:
            version = await store.current_version(uow.session)
            policies = await store.warranty_policies(uow.session)
        return pb.ListWarrantyPoliciesResponse(
            policies=[_policy_message(b, p, 0) for b, p in policies.items()], version=version
        )

    async def PutWarrantyPolicy(
        self, request: pb.PutWarrantyPolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.WarrantyPolicy:
        auth = current_auth()
        require_role(auth, WRITERS)
        m = request.policy
        policy = WarrantyPolicy(**{name: getattr(m, name) for name in POLICY_FIELDS})
        rules.check_warranty_policy(policy)

        async def write(session: AsyncConnection) -> None:
            await store.put_warranty_policy(session, m.brand, policy)

        version = await self._change(
            auth,
            "warranty_policy",
            m.brand,
            asdict(policy),
            request.expected_version,
            write,
            brand=m.brand,
        )
        return _policy_message(m.brand, policy, version)

    async def ListAuthorisations(
        self, request: pb.ListAuthorisationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAuthorisationsResponse:
        auth = current_auth()
        store_id = request.store_id
        if auth.store_id:
            if store_id and store_id != auth.store_id:
                raise NotFound(f"no store {store_id} in your scope")
            store_id = auth.store_id
        async with self.new_uow() as uow:
            version = await store.current_version(uow.session)
            rows = await store.authorisation_rows(uow.session, store_id, request.brand)
        return pb.ListAuthorisationsResponse(
            authorisations=[
                pb.Authorisation(store_id=s, brand=b, service_type=t, authorised=True)
                for s, b, t in rows
            ],
            version=version,
        )

    async def PutAuthorisation(
        self, request: pb.PutAuthorisationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Authorisation:
        auth = current_auth()
        require_role(auth, WRITERS)
        m = request.authorisation
        if not m.store_id:
            raise invalid("store_id", "is required")
        rules.check_authorisation(m.service_type)

        async def write(session: AsyncConnection) -> None:
            await store.set_authorisation(
                session, m.store_id, m.brand, m.service_type, m.authorised
            )

        version = await self._change(
            auth,
            "authorisation",
            f"{m.store_id}/{m.brand}/{m.service_type}",
            {"authorised": m.authorised},
            request.expected_version,
            write,
            brand=m.brand,
        )
        return pb.Authorisation(
            store_id=m.store_id,
            brand=m.brand,
            service_type=m.service_type,
            authorised=m.authorised,
            version=version,
        )

    async def ListApprovalThresholds(
        self, request: pb.ListApprovalThresholdsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListApprovalThresholdsResponse:
        auth = current_auth()
        async with self.new_uow() as uow:
            version = await store.current_version(uow.session)
            rows = await store.threshold_rows(uow.session, auth.branch_id or "")
        return pb.ListApprovalThresholdsResponse(
            thresholds=[pb.ApprovalThreshold(branch_id=b, amount_fen=f) for b, f in rows.items()],
            default_fen=DEFAULT_APPROVAL_THRESHOLD_FEN,
            version=version,
        )

    async def PutApprovalThreshold(
        self, request: pb.PutApprovalThresholdRequest, context: grpc.aio.ServicerContext
    ) -> pb.ApprovalThreshold:
        auth = current_auth()
        require_role(auth, WRITERS)
        m = request.threshold
        if not m.branch_id:
            raise invalid("branch_id", "is required")
        rules.check_threshold(m.amount_fen)

        async def write(session: AsyncConnection) -> None:
            await store.put_threshold(session, m.branch_id, m.amount_fen)

        version = await self._change(
            auth,
            "approval_threshold",
            m.branch_id,
            {"amount_fen": m.amount_fen},
            request.expected_version,
            write,
        )
        return pb.ApprovalThreshold(branch_id=m.branch_id, amount_fen=m.amount_fen, version=version)

    async def ListBaseDataChanges(
        self, request: pb.ListBaseDataChangesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListBaseDataChangesResponse:
        require_role(current_auth(), AUDITORS)
        if request.what and request.what not in CHANGE_KINDS:
            raise invalid("what", f"must be one of {', '.join(CHANGE_KINDS)}")
        size = paging.page_size(request.page_size, CHANGES_PAGE_SIZE, CHANGES_MAX_PAGE_SIZE)
        before = None
        if request.page_token:
            (last_seq,) = paging.decode_page_token(request.page_token, 1)
            if not (last_seq.isascii() and last_seq.isdigit() and len(last_seq) <= 18):
                raise invalid("cursor", "is not a cursor this service issued")
            before = int(last_seq)
        async with self.new_uow() as uow:
            found = await store.list_changes(
                uow.session, request.what, request.key, size + 1, before
            )
        page, more = found[:size], len(found) > size
        return pb.ListBaseDataChangesResponse(
            changes=[
                pb.BaseDataChange(
                    seq=c.seq,
                    at=to_timestamp(c.at),
                    user_id=c.user_id,
                    what=c.what,
                    key=c.key,
                    value_json=c.value_json,
                    version=c.version,
                )
                for c in page
            ],
            next_page_token=paging.encode_page_token(str(page[-1].seq)) if more else "",
        )


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    """Add the base-data RPCs to the orders server."""
    base_data_pb2_grpc.add_BaseDataServiceServicer_to_server(BaseDataService(runtime.uow), server)
