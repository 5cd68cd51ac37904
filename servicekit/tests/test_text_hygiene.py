"""Text no database of ours stores is refused by field, at any depth of a protobuf request."""

from __future__ import annotations

import pytest
from google.protobuf.struct_pb2 import Struct

from aftersales.orders.v1 import orders_pb2
from servicekit.errors import InvalidInput
from servicekit.text_hygiene import refuse_unstorable_text, unstorable_reason


@pytest.mark.parametrize("text", ["", "王小明", "emoji 😀 fine", "tab\tand newline\n"])
def test_storable_text_passes(text: str) -> None:
    assert unstorable_reason(text) is None


@pytest.mark.parametrize(
    ("text", "reason_word"),
    [("a\x00b", "NUL"), ("\ud800", "surrogate"), ("x\udfffy", "surrogate")],
)
def test_unstorable_text_is_named(text: str, reason_word: str) -> None:
    reason = unstorable_reason(text)
    assert reason is not None and reason_word in reason


def refused_field(message: object) -> str:
    with pytest.raises(InvalidInput) as raised:
        refuse_unstorable_text(message)  # type: ignore[arg-type]
    assert len(raised.value.errors) == 1
    return raised.value.errors[0].field


def test_a_clean_request_passes() -> None:
    request = orders_pb2.CreateRepairOrderRequest(
        customer=orders_pb2.Customer(name="王小明", phone="13812345678"),
        fault=orders_pb2.Fault(description="屏幕碎裂"),
    )
    refuse_unstorable_text(request)
    # An empty message encodes as a zero length: the walk runs, and finds nothing.
    request.device.SetInParent()
    assert b"\x00" in request.SerializeToString()
    refuse_unstorable_text(request)


def test_nested_fields_are_named_by_path() -> None:
    request = orders_pb2.CreateRepairOrderRequest(
        customer=orders_pb2.Customer(name="王\x00小明", phone="13812345678")
    )
    assert refused_field(request) == "customer.name"
    assert refused_field(orders_pb2.GetRepairOrderRequest(id="\x00")) == "id"


def test_protobuf_itself_refuses_unpaired_surrogates() -> None:
    # So a service only ever meets NUL; the gateway refuses both before they get this far.
    with pytest.raises(ValueError):
        orders_pb2.GetRepairOrderRequest(id="\ud800")


def test_repeated_strings_and_messages_are_named_by_index() -> None:
    decision = orders_pb2.WarrantyDecision(entitlements=["repair", "swap\x00"])
    assert refused_field(decision) == "entitlements.1"
    brands = orders_pb2.ListBrandsResponse(
        brands=[
            orders_pb2.Brand(code="huawei", models=[orders_pb2.Model(code="p60")]),
            orders_pb2.Brand(code="xiaomi", models=[orders_pb2.Model(code="x", name="\x00")]),
        ]
    )
    assert refused_field(brands) == "brands.1.models.0.name"


def test_map_keys_and_values_are_checked() -> None:
    values = Struct()
    values.update({"colour": "black", "note": "a\x00b"})
    assert refused_field(values) == "fields.note.string_value"
    keys = Struct()
    keys.update({"bad\x00key": "x"})
    assert refused_field(keys) == "fields"
