"""Customer notices (通知) driven by order events, and the tracking link (进度查询)."""

from __future__ import annotations

import grpc

from servicekit.inbox import EventConsumer
from servicekit.runtime import Runtime


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    """Add the notification and tracking RPCs to the customers server."""


def consumers(runtime: Runtime) -> list[EventConsumer]:
    return []
