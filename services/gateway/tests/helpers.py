from __future__ import annotations

import httpx

from servicekit.demo import DEMO_PASSWORD
from servicekit.testing import DatabaseTarget
from services.gateway.settings import SERVICES, GatewaySettings

JWT_SECRET = "test-secret-of-enough-length-for-hs256"

_tokens: dict[str, str] = {}


async def auth_headers(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    """Bearer headers of a demo user. Signed in once per user and reused: every test app has
    the same secret and the demo users the same ids, and argon2 is slow on purpose."""
    if username not in _tokens:
        reply = await client.post(
            "/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}
        )
        assert reply.status_code == 200, reply.text
        _tokens[username] = reply.json()["access_token"]
    return {"Authorization": f"Bearer {_tokens[username]}"}


def intake(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "customer": {"name": "张三", "phone": "13812345678"},
        "device": {"imei": "490154203237518", "brand": "huawei", "model": "mate60"},
        "fault": {"description": "screen cracked"},
        "service_type": "repair",
    }
    body.update(changes)
    return body


def make_settings(db_target: DatabaseTarget, address: str, **overrides: object) -> GatewaySettings:
    values: dict[str, object] = {
        "database_url": db_target.url,
        "db_schema": db_target.schema,
        "demo_data": True,
        "jwt_secret": JWT_SECRET,
        "rate_limit_per_second": 0,
        "service_addresses": dict.fromkeys(SERVICES, address),
    }
    values.update(overrides)
    return GatewaySettings(**values)  # type: ignore[arg-type]
