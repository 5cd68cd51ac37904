"""HQ base data (基础数据) over gRPC: fault codes, labour prices, authorisations, warranty
policies and approval thresholds."""

from __future__ import annotations

import grpc

from servicekit.runtime import Runtime


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    """Add the base-data RPCs to the orders server."""
