"""The bulletin rules without I/O: who publishes where, who sees what, who is expected to read,
who sees receipts, and which links are attachments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from servicekit.auth import AuthContext
from servicekit.errors import Forbidden, InvalidInput, NotFound
from services.customers.domain.bulletins import (
    Bulletin,
    Member,
    Scope,
    audience,
    check_may_publish,
    check_may_see_receipts,
    check_url,
    first_read,
    new_bulletin,
    scope_from,
    sees,
)

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HQ = AuthContext("u-hq", "hq_analyst", None, None)
HQ_ADMIN = AuthContext("u-admin", "hq_admin", None, None)
SH_MANAGER = AuthContext("u-shm", "branch_manager", "SH", None)
ZJ_MANAGER = AuthContext("u-zjm", "branch_manager", "ZJ", None)
SH_KEEPER = AuthContext("u-shk", "warehouse_keeper", "SH", None)
SH001_CLERK = AuthContext("u-c1", "clerk", "SH", "SH-001")
SH002_TECH = AuthContext("u-t2", "technician", "SH", "SH-002")
ZJ001_CLERK = AuthContext("u-z1", "clerk", "ZJ", "ZJ-001")

CHAIN = Scope("chain")
SH = Scope("branch", branch_id="SH")
SH001 = Scope("stores", stores=(("SH", "SH-001"),))
MIXED = Scope("stores", stores=(("SH", "SH-001"), ("ZJ", "ZJ-001")))


def bulletin(scope: Scope, by: AuthContext = HQ, **changes: object) -> Bulletin:
    values: dict[str, object] = {
        "bulletin_id": "b-1",
        "auth": by,
        "kind": "technical",
        "title": "华为 P60 屏幕排线更换要点",
        "body": "见附件。",
        "attachments": (),
        "scope": scope,
        "now": NOW,
        "expires_at": None,
    }
    values.update(changes)
    return new_bulletin(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("scope", [CHAIN, SH, SH001, MIXED], ids=lambda s: s.kind)
@pytest.mark.parametrize("by", [HQ, HQ_ADMIN], ids=["analyst", "admin"])
def test_hq_publishes_anywhere(by: AuthContext, scope: Scope) -> None:
    check_may_publish(by, scope)


def test_a_branch_manager_publishes_to_its_branch_and_its_stores_only() -> None:
    check_may_publish(SH_MANAGER, SH)
    check_may_publish(SH_MANAGER, SH001)
    for outside in (CHAIN, Scope("branch", branch_id="ZJ"), MIXED):
        with pytest.raises(NotFound):
            check_may_publish(SH_MANAGER, outside)


@pytest.mark.parametrize("who", [SH001_CLERK, SH002_TECH, SH_KEEPER], ids=lambda a: a.role)
def test_store_staff_and_other_branch_roles_may_not_publish(who: AuthContext) -> None:
    with pytest.raises(Forbidden):
        check_may_publish(who, SH001)


def test_the_chain_is_seen_by_everyone() -> None:
    chain = bulletin(CHAIN)
    assert all(sees(a, chain) for a in (HQ, SH_MANAGER, SH001_CLERK, ZJ001_CLERK))


def test_a_branch_bulletin_is_seen_by_the_branch_its_stores_and_hq() -> None:
    sh = bulletin(SH)
    assert [sees(a, sh) for a in (HQ, SH_MANAGER, SH001_CLERK, SH002_TECH)] == [True] * 4
    assert not sees(ZJ_MANAGER, sh)
    assert not sees(ZJ001_CLERK, sh)


def test_a_stores_bulletin_is_seen_by_those_stores_and_the_branches_above_them() -> None:
    one = bulletin(SH001)
    assert sees(SH001_CLERK, one)
    assert sees(SH_MANAGER, one)  # oversees its stores
    assert sees(HQ, one)
    assert not sees(SH002_TECH, one)  # a sister store
    assert not sees(ZJ_MANAGER, one)
    mixed = bulletin(MIXED)
    assert sees(ZJ_MANAGER, mixed)
    assert sees(ZJ001_CLERK, mixed)


def test_the_audience_is_the_scope_s_users_without_the_publisher() -> None:
    members = [
        Member("u-hq", None, None),
        Member("u-other-hq", None, None),
        Member("u-shm", "SH", None),
        Member("u-c1", "SH", "SH-001"),
        Member("u-t2", "SH", "SH-002"),
        Member("u-z1", "ZJ", "ZJ-001"),
        Member("u-c1", "SH", "SH-001"),  # named twice: counted once
    ]
    ids = lambda b: [m.user_id for m in audience(b, members)]  # noqa: E731
    assert ids(bulletin(CHAIN)) == ["u-other-hq", "u-shm", "u-c1", "u-t2", "u-z1"]
    assert ids(bulletin(SH)) == ["u-shm", "u-c1", "u-t2"]
    # The manager oversees a stores bulletin but is not chased for it.
    assert ids(bulletin(SH001)) == ["u-c1"]
    assert ids(bulletin(SH, by=SH_MANAGER)) == ["u-c1", "u-t2"]


def test_receipts_are_for_the_publishing_unit_and_hq() -> None:
    by_branch = bulletin(SH001, by=SH_MANAGER)
    check_may_see_receipts(SH_MANAGER, by_branch)
    check_may_see_receipts(HQ, by_branch)
    check_may_see_receipts(HQ_ADMIN, by_branch)
    with pytest.raises(Forbidden):
        check_may_see_receipts(SH001_CLERK, by_branch)
    with pytest.raises(NotFound):
        check_may_see_receipts(ZJ_MANAGER, by_branch)
    # A branch's manager does not see receipts of what HQ sent it.
    with pytest.raises(Forbidden):
        check_may_see_receipts(SH_MANAGER, bulletin(SH))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://files.example.com/a.pdf", "https"),
        ("javascript:alert(1)", "https"),
        ("ftp://files.example.com/a.pdf", "https"),
        ("https://", "host"),
        ("https://localhost/a.pdf", "host"),
        ("https://user:pw@files.example.com/a", "password"),
        ("https://files.example.com/a b.pdf", "spaces"),
        ("https://files.example.com:99999/a", "URL"),
        ("https://files.example.com/" + "a" * 2000, "2000"),
    ],
)
def test_a_link_that_is_not_plain_https_is_refused(url: str, reason: str) -> None:
    problem = check_url(url)
    assert problem is not None
    assert reason in problem


def test_good_attachments_are_kept_and_bad_ones_named_by_index() -> None:
    good = bulletin(CHAIN, attachments=[(" 培训课件 ", "https://files.example.com/p60.pdf")])
    assert [(a.title, a.url) for a in good.attachments] == [
        ("培训课件", "https://files.example.com/p60.pdf")
    ]
    with pytest.raises(InvalidInput) as caught:
        bulletin(
            CHAIN, attachments=[("ok", "https://a.example.com/x"), ("", "http://a.example.com/y")]
        )
    assert [(e.field, e.reason) for e in caught.value.errors] == [
        ("attachments[1].title", "must not be empty"),
        ("attachments[1].url", "must be an https:// link"),
    ]


@pytest.mark.parametrize(
    ("kind", "branch", "stores", "field"),
    [
        ("region", "", [], "scope.kind"),
        ("chain", "SH", [], "scope"),
        ("branch", "", [], "scope.branch_id"),
        ("stores", "", [], "scope.store_ids"),
        ("stores", "SH", [("SH", "SH-001")], "scope.branch_id"),
    ],
)
def test_a_malformed_scope_is_refused_naming_the_field(
    kind: str, branch: str, stores: list[tuple[str, str]], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        scope_from(kind, branch, stores)
    assert [e.field for e in caught.value.errors] == [field]


def test_stores_named_twice_count_once() -> None:
    scope = scope_from("stores", "", [("SH", "SH-001"), ("SH", "SH-001"), ("SH", "SH-002")])
    assert scope.stores == (("SH", "SH-001"), ("SH", "SH-002"))


def test_a_bad_bulletin_is_refused_by_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        bulletin(CHAIN, kind="gossip", title="  ", expires_at=NOW - timedelta(minutes=1))
    assert [e.field for e in caught.value.errors] == ["kind", "title", "expires_at"]


def test_expiry_and_the_first_read() -> None:
    b = bulletin(CHAIN, expires_at=NOW + timedelta(days=7))
    assert not b.expired(NOW + timedelta(days=6))
    assert b.expired(NOW + timedelta(days=7))
    assert first_read(NOW, NOW + timedelta(hours=1)) == NOW
    assert first_read(None, NOW) == NOW
