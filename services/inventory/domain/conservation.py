"""The conservation check (守恒): for every part, what came into the chain less what left it
equals what is on hand in all warehouses plus what is on its way between them.

    receipts - scrap - consumed (issued - returned) - returned to manufacturer
        +/- adjustments = on-hand over all warehouses + in transit

and transfers only move stock between warehouses: what left senders and has not arrived is
exactly what is in transit. Both sides come from different places (the ledger, the balances),
so a movement booked without its balance, or the reverse, shows here; and since two wrong
warehouses could cancel out in the totals, each warehouse's ledger is held to its own balance.
A serialised part's serials are counted too: those in stock (and held) in each warehouse must
be its on-hand (and reserved), and those in transit the units shipped.

Value is held to the same rule, to the fen: what the ledger brought into the chain less what
it took out equals what the on-hand of all warehouses is worth plus what is in transit at its
shipping value; and each warehouse's ledger value is its balance's value (so what transfers
took out and have not brought in is what is in transit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class PartConservation:
    part_number: str
    receipts: int
    scrapped: int
    consumed: int
    returned_to_manufacturer: int
    adjustments: int
    transfers: int  # net of transfers out (-) and in (+): minus what is in transit
    on_hand: int
    in_transit: int
    warehouses_off: tuple[str, ...] = ()  # whose ledger disagrees with their balance
    serials_off: tuple[str, ...] = ()  # a serialised part: where its serials disagree
    value_in: int = 0  # fen the ledger brought into the chain (receipts, returns, found)
    value_out: int = 0  # fen it took out of it (issues, write-offs, missing)
    value_held: int = 0  # what the on-hand over all warehouses is worth, from the balances
    value_in_transit: int = 0  # what the units in transit took from their senders

    @property
    def expected(self) -> int:
        """What the ledger says the chain holds of the part."""
        return (
            self.receipts
            - self.scrapped
            - self.consumed
            - self.returned_to_manufacturer
            + self.adjustments
        )

    @property
    def balanced(self) -> bool:
        held = self.on_hand + self.in_transit
        return (
            self.expected == held
            and self.value_in - self.value_out == self.value_held + self.value_in_transit
            and self.transfers == -self.in_transit
            and not self.warehouses_off
            and not self.serials_off
        )


def conserve(
    part_number: str,
    ledger: Mapping[str, int],
    on_hand: int,
    in_transit: int,
    warehouses_off: tuple[str, ...] = (),
    serials_off: tuple[str, ...] = (),
    value: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> PartConservation:
    """The check for one part from its ledger summed by kind (signed quantities), its on-hand
    over all warehouses, its quantity in transit, the warehouses whose own ledger and
    balance disagree, and for a serialised part, where its serials do not match the
    balances (a warehouse, or "in transit"); and in fen, `value`: in and out by the ledger,
    held and in transit by the balances."""

    def total(kind: str) -> int:
        return ledger.get(kind, 0)

    return PartConservation(
        part_number=part_number,
        receipts=total("receipt"),
        scrapped=-total("scrap"),
        consumed=-(total("issue") + total("return")),
        returned_to_manufacturer=-total("return_to_manufacturer"),
        adjustments=total("adjustment"),
        transfers=total("transfer_out") + total("transfer_in"),
        on_hand=on_hand,
        in_transit=in_transit,
        warehouses_off=warehouses_off,
        serials_off=serials_off,
        value_in=value[0],
        value_out=value[1],
        value_held=value[2],
        value_in_transit=value[3],
    )
