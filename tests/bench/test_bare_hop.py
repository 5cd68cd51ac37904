"""The bare hop the bench measures against answers the wrk ping through its echo server."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.bench.bare_hop import PING_PATH, BareHop


async def test_the_bare_hop_answers_through_its_echo_server(tmp_path: Path) -> None:
    hop = BareHop(tmp_path)
    try:
        await hop.start()
        async with httpx.AsyncClient(base_url=hop.url) as client:
            reply = await client.get(PING_PATH, headers={"Authorization": "Bearer any"})
        assert (reply.status_code, reply.json()) == (200, {"ok": True})
        assert set(hop.processes()) == {"bare echo", "bare http"}
        # Kill the echo: the hop no longer answers, so it did go through it.
        hop.started["bare echo"].kill()
        hop.started["bare echo"].wait()
        async with httpx.AsyncClient(base_url=hop.url) as client:
            assert (await client.get(PING_PATH)).status_code == 500
    finally:
        hop.stop()
