"""Settlement rules (劳务费结算) without I/O: which repairs a manufacturer pays for, what a line
claims, the month in Shanghai, the decision file checked whole, payments only of what is
payable, and the claim's statuses built -> submitted -> decided -> paid."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.orders.domain import settlement as rules
from services.orders.domain.order import Intake, PartLine, RepairOrder, Work
from services.orders.domain.settlement import Claim, ClaimLine, ClaimPart, ClaimPayment
from services.orders.domain.warranty import WarrantyDecision

CLOSED = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)
NOW = datetime(2026, 4, 5, 2, 0, tzinfo=UTC)
PRICES = {"L1": 3000, "L2": 6000}


def order(**changes: object) -> RepairOrder:
    intake = Intake(
        customer_name="",
        customer_phone="",
        imei="490154203237518",
        brand="huawei",
        model="p60",
        colour="",
        purchase_date=None,
        fault_description="",
        symptom_code="",
        service_type="repair",
        accessories="",
        appearance="",
        promised_date=None,
    )
    work = Work(
        repair_level="L2",
        lines=[
            PartLine("l-1", "HW-SCR-P60", 1, True, issued=1, retail_price_fen=80000),
            PartLine("l-2", "HW-FILM", 1, False, issued=1, retail_price_fen=2000),
            PartLine("l-3", "HW-BAT-P60", 1, True, released=True, retail_price_fen=15000),
        ],
    )
    base = RepairOrder(
        id="o-1",
        number="SH-001-260310-0001",
        status="closed",
        branch_id="SH",
        store_id="SH-001",
        intake=intake,
        warranty=WarrantyDecision("in_warranty", ("repair",), "", None, False),
        brand_authorised=True,
        repeat_repair=False,
        received_at=CLOSED,
        created_by="u",
        work=work,
        closed_at=CLOSED,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def line(number: str, **changes: object) -> ClaimLine:
    base = ClaimLine(
        order_id=f"o-{number}",
        number=number,
        store_id="SH-001",
        repair_level="L2",
        labour_fen=6000,
        closed_at=CLOSED,
        parts=(ClaimPart("l-1", "HW-SCR-P60", 1, 80000),),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def claim(*lines: ClaimLine, status: str = "built") -> Claim:
    return Claim(
        id="c-1",
        manufacturer="huawei",
        branch_id="SH",
        month="2026-03",
        built_by="u",
        built_at=NOW,
        status=status,
        lines=list(lines),
    )


def csv(*rows: str) -> bytes:
    return "\n".join(["order_number,decision,reason_code,amount_fen", *rows]).encode()


def test_only_closed_in_warranty_authorised_repairs_of_the_brand_are_claimable() -> None:
    assert rules.claimable(order(), "huawei")
    assert not rules.claimable(order(), "xiaomi")
    assert not rules.claimable(order(status="ready_for_pickup"), "huawei")
    assert not rules.claimable(
        order(warranty=WarrantyDecision("out_of_warranty", (), "", None, False)), "huawei"
    )
    assert not rules.claimable(order(brand_authorised=False), "huawei")
    assert not rules.claimable(order(work=Work(declined=True)), "huawei")
    # Sent to an authorised partner store that repaired it (送修): the manufacturer pays.
    repaired = Work(partner_store_id="SH-002", partner_repaired=True)
    assert rules.claimable(order(brand_authorised=False, work=repaired), "huawei")


def test_a_line_claims_the_labour_of_its_level_and_its_warranty_parts_at_their_price() -> None:
    found = rules.claim_line(order(), PRICES, {})
    assert (found.labour_fen, found.parts_fen, found.claimed_fen) == (6000, 80000, 86000)
    # Only the issued warranty line is reimbursed; it owes its old part, so the line is held.
    assert [p.line_id for p in found.parts] == ["l-1"]
    assert (found.old_parts_owed, found.state) == (1, "held")
    back = rules.claim_line(order(), PRICES, {"l-1": 1})
    assert (back.old_parts_owed, back.state) == (0, "claimed")
    unpriced = rules.claim_line(order(work=replace(order().work, repair_level="L4")), PRICES, {})
    assert unpriced.labour_fen == 0


def test_a_month_is_a_shanghai_month() -> None:
    start, end = rules.month_bounds("2026-03")
    assert start == datetime(2026, 2, 28, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 31, 16, 0, tzinfo=UTC)
    assert rules.month_bounds("2026-12")[1] == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    for bad in ("2026-13", "2026-3", "march", "", "1980-01"):
        with pytest.raises(InvalidInput) as error:
            rules.month_bounds(bad)
        assert error.value.errors[0].field == "month"
    with pytest.raises(InvalidInput):
        rules.check_month_begun("2026-05", NOW)
    rules.check_month_begun("2026-04", NOW)


def test_branch_managers_write_their_branch_and_hq_any() -> None:
    rules.check_writer(AuthContext("m", "branch_manager", "SH"), "SH")
    rules.check_writer(AuthContext("a", "hq_admin"), "ZJ")
    with pytest.raises(NotFound):
        rules.check_writer(AuthContext("m", "branch_manager", "ZJ"), "SH")
    with pytest.raises(Forbidden):
        rules.check_writer(AuthContext("c", "clerk", "SH", "SH-001"), "SH")
    with pytest.raises(Forbidden):
        rules.check_writer(AuthContext("x", "hq_analyst"), "SH")
    rules.check_reader(AuthContext("x", "hq_analyst"), "SH")


def test_a_decision_file_with_bad_rows_names_each_and_is_refused_whole() -> None:
    subject = claim(line("A"), line("B"), line("C"), status="submitted")
    content = csv(
        "A,accepted,,86000",
        "B,maybe,,",
        "X,rejected,,",
        "C,accepted,,99999999",
        "A,rejected,R1,",
    )
    with pytest.raises(InvalidInput) as error:
        rules.parse_decisions(content, subject)
    found = {(e.field, e.reason.split()[0]) for e in error.value.errors}
    assert found == {
        ("rows[3].decision", "must"),
        ("rows[4].order_number", "'X'"),
        ("rows[4].reason_code", "is"),
        ("rows[5].amount_fen", "must"),
        ("rows[6].order_number", "decided"),
    }
    assert all(x.decision == "" for x in subject.lines)


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"", "header"),
        (b"order_number,decision\nA,accepted\n", "header"),
        (b"order_number,decision,reason_code,amount_fen,extra\n", "header"),
        (b"\xff\xfe", "file"),
        (csv("A,accepted,,86000"), "rows"),  # B is not decided
        (csv("A,accepted,,86000", "B,accepted,,1.5"), "rows[3].amount_fen"),
        (csv("A,accepted,,86000", "B,rejected,R1,10"), "rows[3].amount_fen"),
        (csv("A,accepted,,86000", "B,rejected,bad code,"), "rows[3].reason_code"),
        (csv("A,accepted,,86000", "B,accepted"), "rows[3]"),
    ],
)
def test_a_bad_decision_file_is_named(content: bytes, field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        rules.parse_decisions(content, claim(line("A"), line("B"), status="submitted"))
    assert field in [e.field for e in error.value.errors]


def test_a_decision_file_in_any_column_order_with_a_bom_and_a_blank_tail() -> None:
    content = "\ufeffdecision,order_number,amount_fen,reason_code\r\naccepted,A,,\r\n"
    content += "REJECTED,B,,NO-OLD-PART\r\n\r\n"
    decisions = rules.parse_decisions(content.encode(), claim(line("A"), line("B")))
    assert [(d.order_number, d.decision, d.reason_code, d.amount_fen) for d in decisions] == [
        ("A", "accepted", "", 86000),  # accepted as claimed
        ("B", "rejected", "NO-OLD-PART", 0),
    ]


def decided(*lines: ClaimLine, content: bytes | None = None) -> Claim:
    subject = claim(*lines)
    subject.submit(NOW)
    content = content or csv(*(f"{x.number},accepted,,{x.claimed_fen}" for x in lines))
    assert subject.decide(rules.parse_decisions(content, subject), rules.fingerprint(content), NOW)
    return subject


def test_a_claim_goes_built_submitted_decided_paid_with_a_version_each_change() -> None:
    subject = claim(line("A"), line("B"))
    with pytest.raises(Conflict):
        subject.record_payment(ClaimPayment(1, date(2026, 4, 5), "u", NOW))
    subject.submit(NOW)
    with pytest.raises(Conflict):
        subject.submit(NOW)
    content = csv("A,accepted,,80000", "B,rejected,NO-PROOF,")
    subject.decide(rules.parse_decisions(content, subject), rules.fingerprint(content), NOW)
    assert (subject.status, subject.version) == ("decided", 3)
    assert [x.state for x in subject.lines] == ["accepted", "rejected"]
    assert (subject.claimed_fen, subject.accepted_fen, subject.payable_fen) == (
        172000,
        80000,
        80000,
    )
    # The same file again changes nothing; another file is refused.
    assert not subject.decide([], rules.fingerprint(content), NOW)
    with pytest.raises(Conflict):
        subject.decide([], rules.fingerprint(b"other"), NOW)
    subject.record_payment(ClaimPayment(30000, date(2026, 4, 5), "u", NOW))
    assert (subject.status, subject.payable_fen) == ("decided", 50000)
    with pytest.raises(InvalidInput) as error:
        subject.record_payment(ClaimPayment(50001, date(2026, 4, 5), "u", NOW))
    assert error.value.errors[0].field == "amount_fen"
    subject.record_payment(ClaimPayment(50000, date(2026, 4, 5), "u", NOW))
    assert (subject.status, subject.paid_fen, subject.version) == ("paid", 80000, 5)
    assert [x.state for x in subject.lines] == ["paid", "rejected"]
    # One event per change (the build's own is the builder's to record).
    assert len(subject.pending_events) == 4


def test_a_held_line_is_not_payable_until_its_old_part_is_back() -> None:
    subject = decided(line("A"), line("B", old_parts_owed=1))
    assert (subject.payable_fen, subject.held_fen) == (86000, 86000)
    with pytest.raises(InvalidInput) as error:
        subject.record_payment(ClaimPayment(172000, date(2026, 4, 5), "u", NOW))
    assert "wait for old parts" in error.value.errors[0].reason
    subject.record_payment(ClaimPayment(86000, date(2026, 4, 5), "u", NOW))
    assert subject.status == "decided"
    assert subject.old_parts_returned({"o-B": 0})
    assert not subject.old_parts_returned({"o-B": 0})
    assert (subject.lines[1].state, subject.payable_fen) == ("accepted", 86000)
    subject.record_payment(ClaimPayment(86000, date(2026, 4, 5), "u", NOW))
    assert subject.status == "paid"


def test_a_payment_dated_after_today_in_shanghai_is_refused() -> None:
    for bad in ("2026-04-31", "1980-01-01", "01/04/2026"):
        with pytest.raises(InvalidInput) as malformed:
            rules.parse_paid_on(bad)
        assert malformed.value.errors[0].field == "paid_on"
    subject = decided(line("A"))
    # 02:00 UTC on Apr 5 is 10:00 on Apr 5 in Shanghai.
    with pytest.raises(InvalidInput) as error:
        subject.record_payment(ClaimPayment(1, date(2026, 4, 6), "u", NOW))
    assert error.value.errors[0].field == "paid_on"


def test_a_built_claim_takes_repairs_closed_since_and_a_submitted_one_does_not() -> None:
    subject = claim(line("B", closed_at=datetime(2026, 3, 20, tzinfo=UTC)))
    assert subject.add_lines([line("A")])
    assert [x.number for x in subject.lines] == ["A", "B"]
    assert not subject.add_lines([])
    subject.submit(NOW)
    assert not subject.add_lines([line("C")])
    assert len(subject.lines) == 2
