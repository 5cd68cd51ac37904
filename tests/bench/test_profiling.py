"""The profile's summary: py-spy's collapsed stacks read and ranked by own and total time."""

from __future__ import annotations

from tests.bench.profiling import read_collapsed, summary, top_functions

RAW = """\
<module> (m.py:1);handle (app.py:10);dumps (json/__init__.py:183) 60
<module> (m.py:1);handle (app.py:10) 30
<module> (m.py:1);handle (app.py:10);handle (app.py:10) 10
a line that is not a stack
"""


def test_collapsed_stacks_are_read_with_their_counts() -> None:
    stacks = read_collapsed(RAW)
    assert stacks[("<module> (m.py:1)", "handle (app.py:10)")] == 30
    assert sum(stacks.values()) == 100


def test_functions_ranked_by_own_and_by_total_samples() -> None:
    samples, own, total = top_functions(read_collapsed(RAW), top=2)
    assert samples == 100
    assert own == [("dumps (json/__init__.py:183)", 60), ("handle (app.py:10)", 40)]
    # Recursion counts a stack once; <module> only ever calls handle: left out.
    assert total == [("handle (app.py:10)", 100), ("dumps (json/__init__.py:183)", 60)]


def test_summary_in_percent_of_the_process_samples() -> None:
    lines = summary("orders", read_collapsed(RAW), top=1)
    assert lines[0] == "orders: 100 samples at 100/s, idle threads left out"
    assert lines[1:] == [
        "  by own time:",
        "     60.0 %  dumps (json/__init__.py:183)",
        "  by total time:",
        "    100.0 %  handle (app.py:10)",
    ]
    assert summary("gateway", read_collapsed("")) == ["gateway: no samples"]
