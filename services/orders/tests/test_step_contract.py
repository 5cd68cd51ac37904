"""The step table is part of orders' contract: the proto's enum `Step` declares each step's
guards (options `guard`), which callers such as the gateway read instead of orders' code. It
must say exactly what the domain's guard applies."""

from __future__ import annotations

from aftersales.orders.v1 import orders_pb2
from services.orders.domain.lifecycle import STEPS, Step


def declared_steps() -> list[Step]:
    guards = [
        value.GetOptions().Extensions[orders_pb2.guard]
        for value in orders_pb2.Step.DESCRIPTOR.values
        if value.number
    ]
    return [
        Step(g.name, tuple(g.roles), tuple(g.from_statuses), g.where, g.does_work) for g in guards
    ]


def test_the_contract_declares_the_guards_the_domain_applies() -> None:
    assert declared_steps() == list(STEPS.values())


def test_every_declared_step_has_a_guard() -> None:
    unnamed = [
        value.name
        for value in orders_pb2.Step.DESCRIPTOR.values
        if value.number and not value.GetOptions().Extensions[orders_pb2.guard].name
    ]
    assert unnamed == []
