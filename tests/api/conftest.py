"""The log capture of tests/ops, for the API tests that check what is (not) logged."""

from tests.ops.conftest import CapturedLogs, logs

__all__ = ["CapturedLogs", "logs"]
