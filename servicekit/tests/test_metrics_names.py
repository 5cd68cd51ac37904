"""Every metric the platform declares passes promtool's lint (names, units, `_total`), and the
database pool's use is read at scrape time."""

from __future__ import annotations

from typing import Any, cast

from prometheus_client import generate_latest
from sqlalchemy.pool import QueuePool

from servicekit import metrics
from tests.alerts import promtool


def test_every_declared_metric_is_promtool_clean() -> None:
    # Labelled metrics show only once a child exists: make one of each.
    for value in vars(metrics).values():
        labelnames = getattr(value, "_labelnames", None)
        if labelnames:
            value.labels(*["x"] * len(labelnames))
    text = generate_latest()
    checked = promtool.run("check", "metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout


class _Connection:
    """Enough of a DB-API connection for a pool to hand out and take back."""

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_pool_use_is_read_at_each_scrape() -> None:
    pool = QueuePool(cast(Any, _Connection), pool_size=3, max_overflow=2)
    metrics.watch_pool("pooled", pool)
    held = pool.connect()
    text = generate_latest().decode()
    assert 'aftersales_db_pool_connections_in_use{service="pooled"} 1.0' in text
    assert 'aftersales_db_pool_connections_max{service="pooled"} 5.0' in text
    held.close()
    assert 'aftersales_db_pool_connections_in_use{service="pooled"} 0.0' in (
        generate_latest().decode()
    )
