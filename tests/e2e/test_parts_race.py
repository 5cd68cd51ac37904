"""Two approvals of one quote at once through the gateway, with the same If-Match, on the real
processes: one is answered 200 and the other 412, and every round the part the order says it
holds is the part inventory holds for it."""

from __future__ import annotations

import asyncio

from tests.e2e.conftest import Api
from tests.e2e.test_repair_lifecycle import (
    ORDERS,
    available,
    diagnosed_and_quoted,
    part_in_stock,
    take_in,
)

ROUNDS = 20


async def test_two_approvals_at_once_leave_the_orders_part_held_at_inventory(api: Api) -> None:
    part, before = await part_in_stock(api)
    for round_ in range(ROUNDS):
        desk = await take_in(api)
        await diagnosed_and_quoted(desk, part, labour=5_000)
        answers = await asyncio.gather(
            desk.step("sh001.clerk", "approval", {"accepted": True}),
            desk.step("sh001.clerk", "approval", {"accepted": True}),
        )
        assert sorted(x.status_code for x in answers) == [200, 412], (round_, answers)
        read = await api.get("sh001.clerk", f"{ORDERS}/{desk.order['id']}")
        order = read.json()
        assert (order["status"], order["lines"][0]["reserved"]) == ("approved", 1), round_
        assert await available(api, part) == before - 1, round_
        desk.etag = read.headers["ETag"]
        await desk.take("sh001.clerk", "cancel", {"reason": "the customer changed their mind"})
        assert await available(api, part) == before, round_
