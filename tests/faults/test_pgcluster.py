"""The outage test's own cluster: without initdb it is skipped locally and fails under CI."""

from __future__ import annotations

import pytest

from tests.support import pgcluster


def test_missing_initdb_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgcluster, "_tool", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI requires it"), pgcluster.own_cluster():
        pass


def test_missing_initdb_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgcluster, "_tool", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with (
        pytest.raises(pytest.skip.Exception, match="initdb/pg_ctl not found"),
        pgcluster.own_cluster(),
    ):
        pass
