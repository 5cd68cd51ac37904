"""Fixture series for `promtool test rules` (the *.yaml here) and promtool itself for the tests."""
