"""The bulletins gRPC service (aftersales.customers.v1.BulletinsService): translates between
protobuf and the use cases in services/customers/bulletins.py."""

from __future__ import annotations

import grpc

from aftersales.customers.v1 import bulletins_pb2 as pb
from aftersales.customers.v1 import bulletins_pb2_grpc
from servicekit.auth import current_auth
from servicekit.idempotency import received_request
from servicekit.timeutil import from_timestamp, to_timestamp, utc_now
from services.customers import bulletins
from services.customers.bulletins import Clock, Draft, NewUow, Seen
from services.customers.domain.bulletins import Member


def bulletin_message(seen: Seen) -> pb.Bulletin:
    b = seen.bulletin
    message = pb.Bulletin(
        id=b.id,
        kind=b.kind,
        title=b.title,
        body=b.body,
        attachments=[pb.Attachment(title=a.title, url=a.url) for a in b.attachments],
        publisher_id=b.publisher_id,
        publisher_branch_id=b.publisher_branch_id or "",
        scope=pb.BulletinScope(
            kind=b.scope.kind,
            branch_id=b.scope.branch_id or "",
            stores=[pb.ScopeStore(branch_id=br, store_id=st) for br, st in b.scope.stores],
        ),
        published_at=to_timestamp(b.published_at),
        read=seen.read_at is not None,
    )
    if b.expires_at is not None:
        message.expires_at.CopyFrom(to_timestamp(b.expires_at))
    if seen.read_at is not None:
        message.read_at.CopyFrom(to_timestamp(seen.read_at))
    return message


class BulletinsService(bulletins_pb2_grpc.BulletinsServiceServicer):
    def __init__(self, new_uow: NewUow, clock: Clock = utc_now) -> None:
        self.new_uow = new_uow
        self.clock = clock

    async def PublishBulletin(
        self, request: pb.PublishBulletinRequest, context: grpc.aio.ServicerContext
    ) -> pb.Bulletin:
        draft = Draft(
            kind=request.kind,
            title=request.title,
            body=request.body,
            attachments=[(a.title, a.url) for a in request.attachments],
            scope_kind=request.scope.kind,
            scope_branch_id=request.scope.branch_id,
            scope_stores=[(s.branch_id, s.store_id) for s in request.scope.stores],
            expires_at=(
                from_timestamp(request.expires_at) if request.HasField("expires_at") else None
            ),
        )
        seen = await bulletins.publish(
            self.new_uow, current_auth(), draft, self.clock(), received_request()
        )
        return bulletin_message(seen)

    async def ListBulletins(
        self, request: pb.ListBulletinsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListBulletinsResponse:
        found = await bulletins.list_mine(
            self.new_uow,
            current_auth(),
            self.clock(),
            request.unread_only,
            request.page_size,
            request.page_token,
        )
        return pb.ListBulletinsResponse(
            bulletins=[bulletin_message(s) for s in found.items],
            next_page_token=found.next_token,
            unread_count=found.unread_count,
        )

    async def GetBulletin(
        self, request: pb.GetBulletinRequest, context: grpc.aio.ServicerContext
    ) -> pb.Bulletin:
        return bulletin_message(
            await bulletins.get(self.new_uow, current_auth(), request.bulletin_id)
        )

    async def MarkBulletinRead(
        self, request: pb.MarkBulletinReadRequest, context: grpc.aio.ServicerContext
    ) -> pb.Bulletin:
        seen = await bulletins.mark_read(
            self.new_uow, current_auth(), request.bulletin_id, self.clock()
        )
        return bulletin_message(seen)

    async def ListBulletinReceipts(
        self, request: pb.ListBulletinReceiptsRequest, context: grpc.aio.ServicerContext
    ) -> pb.BulletinReceipts:
        members = [
            Member(m.user_id, m.branch_id or None, m.store_id or None) for m in request.members
        ]
        found = await bulletins.receipts(self.new_uow, current_auth(), request.bulletin_id, members)
        return pb.BulletinReceipts(
            bulletin_id=found.bulletin_id,
            read=[pb.Receipt(user_id=u, read_at=to_timestamp(at)) for u, at in found.read],
            not_read=found.not_read,
            audience=found.audience,
        )


def register(server: grpc.aio.Server, new_uow: NewUow) -> None:
    bulletins_pb2_grpc.add_BulletinsServiceServicer_to_server(BulletinsService(new_uow), server)
