"""Bulletins through the customers service's real gRPC server and database: publish to a
scope, each user's list (unread first, paged, the unread count), mark read (first time kept),
the receipts (who read, who not), a retried publish, and refusals by field, role and scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from aftersales.customers.v1 import bulletins_pb2 as pb
from aftersales.customers.v1 import bulletins_pb2_grpc
from servicekit.auth import AuthContext
from servicekit.errors import Forbidden, InvalidInput, NotFound
from servicekit.grpc_client import call
from servicekit.idempotency import passing_request_id
from servicekit.runtime import Runtime
from servicekit.testing import acting_as, serving
from servicekit.timeutil import to_timestamp, utc_now
from services.customers import bulletins
from services.customers.domain import bulletins as rules
from services.customers.service import SPEC

pytestmark = pytest.mark.service("customers")

HQ = AuthContext("u-hq", "hq_analyst", None, None)
SH_MANAGER = AuthContext("u-shm", "branch_manager", "SH", None)
ZJ_MANAGER = AuthContext("u-zjm", "branch_manager", "ZJ", None)
SH001_CLERK = AuthContext("u-c1", "clerk", "SH", "SH-001")
SH002_TECH = AuthContext("u-t2", "technician", "SH", "SH-002")
ZJ001_CLERK = AuthContext("u-z1", "clerk", "ZJ", "ZJ-001")

MEMBERS = [
    pb.ScopeMember(user_id="u-hq"),
    pb.ScopeMember(user_id="u-shm", branch_id="SH"),
    pb.ScopeMember(user_id="u-c1", branch_id="SH", store_id="SH-001"),
    pb.ScopeMember(user_id="u-t2", branch_id="SH", store_id="SH-002"),
    pb.ScopeMember(user_id="u-z1", branch_id="ZJ", store_id="ZJ-001"),
]

Stub = bulletins_pb2_grpc.BulletinsServiceStub


@pytest.fixture
async def stub(runtime: Runtime) -> AsyncIterator[Stub]:
    async with serving(SPEC, runtime) as channel:
        yield bulletins_pb2_grpc.BulletinsServiceStub(channel)


def request(
    title: str = "门店安全生产通知",
    kind: str = "notice",
    scope: pb.BulletinScope | None = None,
    **changes: object,
) -> pb.PublishBulletinRequest:
    message = pb.PublishBulletinRequest(
        kind=kind,
        title=title,
        body="请各网点周五前完成自查。",
        attachments=[pb.Attachment(title="自查表", url="https://files.example.com/check.xlsx")],
        scope=scope or pb.BulletinScope(kind="chain"),
    )
    for name, value in changes.items():
        if isinstance(value, Timestamp):
            getattr(message, name).CopyFrom(value)
        elif isinstance(value, list):
            message.ClearField(name)  # type: ignore[arg-type]
            getattr(message, name).extend(value)
        else:
            setattr(message, name, value)
    return message


def stores(*pairs: tuple[str, str]) -> pb.BulletinScope:
    return pb.BulletinScope(
        kind="stores", stores=[pb.ScopeStore(branch_id=b, store_id=s) for b, s in pairs]
    )


async def publish(stub: Stub, by: AuthContext, message: pb.PublishBulletinRequest) -> pb.Bulletin:
    with acting_as(by):
        return await call(stub.PublishBulletin, message)


async def titles(stub: Stub, who: AuthContext, unread_only: bool = False) -> list[str]:
    with acting_as(who):
        reply = await call(stub.ListBulletins, pb.ListBulletinsRequest(unread_only=unread_only))
    return [b.title for b in reply.bulletins]


async def test_each_user_lists_what_is_addressed_to_them_or_below_them(
    runtime: Runtime, stub: Stub
) -> None:
    await publish(stub, HQ, request("全网"))
    await publish(
        stub,
        SH_MANAGER,
        request("上海分公司", scope=pb.BulletinScope(kind="branch", branch_id="SH")),
    )
    await publish(
        stub, SH_MANAGER, request("SH-001 培训", kind="training", scope=stores(("SH", "SH-001")))
    )
    await publish(stub, HQ, request("浙江", scope=pb.BulletinScope(kind="branch", branch_id="ZJ")))

    assert await titles(stub, HQ) == ["浙江", "SH-001 培训", "上海分公司", "全网"]
    assert await titles(stub, SH_MANAGER) == ["SH-001 培训", "上海分公司", "全网"]
    assert await titles(stub, SH001_CLERK) == ["SH-001 培训", "上海分公司", "全网"]
    assert await titles(stub, SH002_TECH) == ["上海分公司", "全网"]
    assert await titles(stub, ZJ001_CLERK) == ["浙江", "全网"]
    assert await titles(stub, ZJ_MANAGER) == ["浙江", "全网"]


async def test_reading_moves_a_bulletin_after_the_unread_and_keeps_the_first_time(
    runtime: Runtime, stub: Stub
) -> None:
    first = await publish(stub, HQ, request("第一"))
    await publish(stub, HQ, request("第二"))
    with acting_as(SH001_CLERK):
        once = await call(stub.MarkBulletinRead, pb.MarkBulletinReadRequest(bulletin_id=first.id))
        again = await call(stub.MarkBulletinRead, pb.MarkBulletinReadRequest(bulletin_id=first.id))
        got = await call(stub.GetBulletin, pb.GetBulletinRequest(bulletin_id=first.id))
        listed = await call(stub.ListBulletins, pb.ListBulletinsRequest())
        unread = await call(stub.ListBulletins, pb.ListBulletinsRequest(unread_only=True))

    assert once.read and again.read and got.read
    assert once.read_at == again.read_at == got.read_at
    assert [(b.title, b.read) for b in listed.bulletins] == [("第二", False), ("第一", True)]
    assert listed.unread_count == 1
    assert [b.title for b in unread.bulletins] == ["第二"]
    # Another user's list is untouched by it.
    with acting_as(SH002_TECH):
        theirs = await call(stub.ListBulletins, pb.ListBulletinsRequest())
    assert theirs.unread_count == 2


async def test_pages_walk_unread_then_read_without_gaps_or_repeats(
    runtime: Runtime, stub: Stub
) -> None:
    published = [await publish(stub, HQ, request(f"#{i}")) for i in range(7)]
    with acting_as(SH001_CLERK):
        for b in (published[1], published[4]):
            await call(stub.MarkBulletinRead, pb.MarkBulletinReadRequest(bulletin_id=b.id))
        seen: list[str] = []
        token = ""
        while True:
            reply = await call(
                stub.ListBulletins, pb.ListBulletinsRequest(page_size=3, page_token=token)
            )
            seen += [b.title for b in reply.bulletins]
            token = reply.next_page_token
            if not token:
                break
    assert seen == ["#6", "#5", "#3", "#2", "#0", "#4", "#1"]


async def test_the_receipts_name_who_read_and_who_not(runtime: Runtime, stub: Stub) -> None:
    sh = await publish(
        stub, SH_MANAGER, request(scope=pb.BulletinScope(kind="branch", branch_id="SH"))
    )
    with acting_as(SH002_TECH):
        await call(stub.MarkBulletinRead, pb.MarkBulletinReadRequest(bulletin_id=sh.id))
    asked = pb.ListBulletinReceiptsRequest(bulletin_id=sh.id, members=MEMBERS)
    for who in (SH_MANAGER, HQ):
        with acting_as(who):
            receipts = await call(stub.ListBulletinReceipts, asked)
        assert [r.user_id for r in receipts.read] == ["u-t2"]
        assert list(receipts.not_read) == ["u-c1"]  # the publisher and other units left out
        assert receipts.audience == 2
    with acting_as(SH001_CLERK), pytest.raises(Forbidden):
        await call(stub.ListBulletinReceipts, asked)
    with acting_as(ZJ_MANAGER), pytest.raises(NotFound):
        await call(stub.ListBulletinReceipts, asked)


async def test_outside_the_scope_a_bulletin_is_not_found(runtime: Runtime, stub: Stub) -> None:
    only_sh001 = await publish(stub, HQ, request(scope=stores(("SH", "SH-001"))))
    for who in (SH002_TECH, ZJ_MANAGER, ZJ001_CLERK):
        with acting_as(who):
            for rpc, message in (
                (stub.GetBulletin, pb.GetBulletinRequest(bulletin_id=only_sh001.id)),
                (stub.MarkBulletinRead, pb.MarkBulletinReadRequest(bulletin_id=only_sh001.id)),
                (stub.GetBulletin, pb.GetBulletinRequest(bulletin_id="not-an-id")),
            ):
                with pytest.raises(NotFound):
                    await call(rpc, message)


async def test_who_may_not_publish_is_refused_and_nothing_is_kept(
    runtime: Runtime, stub: Stub
) -> None:
    with pytest.raises(Forbidden):
        await publish(stub, SH001_CLERK, request(scope=stores(("SH", "SH-001"))))
    with pytest.raises(NotFound):
        await publish(stub, SH_MANAGER, request(scope=stores(("ZJ", "ZJ-001"))))
    with pytest.raises(NotFound):
        await publish(stub, SH_MANAGER, request())  # the chain is HQ's
    assert await titles(stub, HQ) == []


async def test_bad_input_is_refused_by_field(runtime: Runtime, stub: Stub) -> None:
    bad = request(
        kind="memo",
        title="",
        attachments=[pb.Attachment(title="手册", url="http://files.example.com/m.pdf")],
        expires_at=to_timestamp(utc_now() - timedelta(hours=1)),
    )
    with pytest.raises(InvalidInput) as caught:
        await publish(stub, HQ, bad)
    assert [e.field for e in caught.value.errors] == [
        "kind",
        "title",
        "attachments[0].url",
        "expires_at",
    ]
    assert await titles(stub, HQ) == []


async def test_a_retried_publish_gets_the_first_bulletin(runtime: Runtime, stub: Stub) -> None:
    with passing_request_id("u-hq:key-1"):
        first = await publish(stub, HQ, request("一次"))
        again = await publish(stub, HQ, request("一次"))
        with pytest.raises(InvalidInput) as caught:
            await publish(stub, HQ, request("另一条"))
    assert again.id == first.id
    assert caught.value.errors[0].field == "Idempotency-Key"
    assert await titles(stub, HQ) == ["一次"]


async def test_an_expired_bulletin_leaves_the_lists_but_opens_by_id(runtime: Runtime) -> None:
    now = utc_now()
    expires = now + timedelta(days=3)
    draft = bulletins.Draft("notice", "限时", "…", [], "chain", "", [], expires)
    seen = await bulletins.publish(runtime.uow, HQ, draft, now)

    before = await bulletins.list_mine(runtime.uow, SH001_CLERK, now, False, 0, "")
    after = await bulletins.list_mine(runtime.uow, SH001_CLERK, expires, False, 0, "")
    opened = await bulletins.get(runtime.uow, SH001_CLERK, seen.bulletin.id)

    assert ([s.bulletin.title for s in before.items], before.unread_count) == (["限时"], 1)
    assert (after.items, after.unread_count) == ([], 0)
    assert (opened.bulletin.published_at, opened.bulletin.expires_at) == (now, expires)


async def test_the_lists_show_exactly_what_the_rule_says_each_user_sees(runtime: Runtime) -> None:
    """The SQL of the lists against domain.bulletins.sees, over every kind of scope."""
    now = utc_now()
    scopes = [
        ("chain", "", []),
        ("branch", "SH", []),
        ("branch", "ZJ", []),
        ("stores", "", [("SH", "SH-001")]),
        ("stores", "", [("SH", "SH-002"), ("ZJ", "ZJ-001")]),
        ("stores", "", [("ZJ", "ZJ-002")]),
    ]
    published = []
    for i, (kind, branch, pairs) in enumerate(scopes):
        draft = bulletins.Draft("notice", f"#{i}", "…", [], kind, branch, pairs, None)
        at = now + timedelta(seconds=i)
        published.append((await bulletins.publish(runtime.uow, HQ, draft, at)).bulletin)
    later = now + timedelta(minutes=1)
    for who in (HQ, SH_MANAGER, ZJ_MANAGER, SH001_CLERK, SH002_TECH, ZJ001_CLERK):
        listed = await bulletins.list_mine(runtime.uow, who, later, False, 100, "")
        expected = [b.id for b in reversed(published) if rules.sees(who, b)]
        assert [s.bulletin.id for s in listed.items] == expected, who
        assert listed.unread_count == len(expected)
