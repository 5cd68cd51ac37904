"""Warranty (三包) at intake, by the national mobile-phone three-guarantees rules, with each
manufacturer's own periods. The technician's finding may later override this guess (for
example physical or liquid damage, 人为损坏)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from servicekit.timeutil import shanghai_day

IN_WARRANTY = "in_warranty"
OUT_OF_WARRANTY = "out_of_warranty"
REPAIR_HOLD = "返修保修"


@dataclass(frozen=True)
class WarrantyPolicy:
    """A manufacturer's warranty policy, kept by HQ; the defaults are the national rules."""

    return_days: int = 7  # 7日包退: a listed performance fault entitles return, swap or repair
    swap_days: int = 15  # 15日包换: swap or repair
    main_unit_months: int = 12  # 整机保修
    battery_months: int = 12
    charger_months: int = 12
    earphone_months: int = 3
    repair_hold_days: int = 30  # the same fault back within this is repaired free
    parts_wait_days: int = 60  # an in-warranty repair waiting longer for parts: swap
    swap_after_repairs: int = 2  # warranty repairs of a recurring fault after which: swap


@dataclass(frozen=True)
class WarrantyDecision:
    status: str
    entitlements: tuple[str, ...]
    reason: str
    expires_on: date | None
    send_on_required: bool


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise ValueError(f"cannot add {months} months to {day}")


def decide_warranty(
    purchase_date: date | None,
    intake_day: date,
    policy: WarrantyPolicy,
    brand_authorised: bool,
) -> WarrantyDecision:
    if purchase_date is None:
        return WarrantyDecision(
            OUT_OF_WARRANTY, (), "no purchase date or proof of purchase", None, False
        )
    expires_on = add_months(purchase_date, policy.main_unit_months)
    age_days = (intake_day - purchase_date).days + 1  # the day of sale is day 1
    if intake_day >= expires_on:
        return WarrantyDecision(
            OUT_OF_WARRANTY, (), f"main unit warranty ended on {expires_on}", None, False
        )
    if age_days <= policy.return_days:
        entitlements: tuple[str, ...] = ("return", "swap", "repair")
        reason = f"day {age_days} after sale: return, swap or repair (包退)"
    elif age_days <= policy.swap_days:
        entitlements = ("swap", "repair")
        reason = f"day {age_days} after sale: swap or repair (包换)"
    else:
        entitlements = ("repair",)
        reason = f"main unit under warranty until {expires_on} (保修)"
    if not brand_authorised:
        reason += "; this store is not authorised for the brand: send on to an authorised store"
    return WarrantyDecision(IN_WARRANTY, entitlements, reason, expires_on, not brand_authorised)


def days_since_repair(closed_at: datetime, intake_day: date) -> int:
    """Shanghai days from the day a repair closed to the (Shanghai) intake day: closed at 23:30
    and back at 00:30 is back one day later, however few hours passed."""
    return (intake_day - shanghai_day(closed_at)).days


def with_repair_hold(
    decision: WarrantyDecision,
    days_since_repair: int | None,
    earlier_number: str,
    policy: WarrantyPolicy,
) -> WarrantyDecision:
    """A repair must hold (返修保修): a device back within `repair_hold_days` of a closed
    repair is repaired free whatever its warranty. The technician may still find another fault
    at diagnosis and override this, with the reason."""
    if days_since_repair is None or days_since_repair > policy.repair_hold_days:
        return decision
    hold = (
        f"back {days_since_repair} days after repair {earlier_number}: "
        f"repaired free ({REPAIR_HOLD})"
    )
    if decision.status == IN_WARRANTY:
        return WarrantyDecision(
            decision.status,
            decision.entitlements,
            f"{decision.reason}; {hold}",
            decision.expires_on,
            decision.send_on_required,
        )
    return WarrantyDecision(IN_WARRANTY, ("repair",), hold, None, False)


def accessory_months(category: str, policy: WarrantyPolicy) -> int | None:
    """The accessory's own warranty period by its catalog category; None for a part of the
    main unit (a screen, a mainboard, a camera, ...)."""
    periods = {
        "battery": policy.battery_months,
        "charger": policy.charger_months,
        "earphone": policy.earphone_months,
    }
    return periods.get(category)


def under_repair_hold(decision: WarrantyDecision) -> bool:
    """Free because a repair must hold (with_repair_hold said so)."""
    return decision.status == IN_WARRANTY and REPAIR_HOLD in decision.reason


def line_in_warranty(
    category: str,
    decision: WarrantyDecision,
    purchase_date: date | None,
    intake_day: date,
    policy: WarrantyPolicy,
    technician_decided: bool = False,
) -> bool:
    """Whether one part line is free (三包 per part): a part of the main unit follows the
    order's decision; a battery, charger or earphone has its own period from the purchase, so
    it is free within it though the main unit's warranty has ended, and paid past it though
    the main unit is still covered. The technician's finding on the device (an override) and a
    repair that must hold cover every line alike."""
    months = accessory_months(category, policy)
    if months is None or technician_decided:
        return decision.status == IN_WARRANTY
    if under_repair_hold(decision):
        return True
    return purchase_date is not None and intake_day < add_months(purchase_date, months)


def parts_wait_swap_on(
    decision: WarrantyDecision, intake_day: date, policy: WarrantyPolicy
) -> date | None:
    """An in-warranty repair not finished within `parts_wait_days` of intake because parts are
    missing entitles a swap (三包): the day that happens; None out of warranty."""
    if decision.status != IN_WARRANTY:
        return None
    return intake_day + timedelta(days=policy.parts_wait_days)
