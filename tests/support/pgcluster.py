"""A throwaway PostgreSQL cluster a test owns, so it can stop and start it (outage tests).

Needs initdb and pg_ctl (on PATH or in /usr/local/bin). Without them the test is skipped,
except under CI=true, where it fails: CI must run the outage tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import postgres


def _tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidate = Path("/usr/local/bin") / name
    return str(candidate) if candidate.exists() else None


class Cluster:
    """A private cluster on a free loopback port; `stop`/`start` may be called repeatedly."""

    def __init__(self, initdb: str, pg_ctl: str) -> None:
        self.pg_ctl = pg_ctl
        self.workdir = Path(tempfile.mkdtemp(prefix="printhook-faults-pg-"))
        self.data = self.workdir / "data"
        self.port = postgres._free_port()
        self.run_as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.workdir, "postgres", "postgres")
            self.run_as = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*self.run_as, initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust"],
            check=True,
            capture_output=True,
        )
        self.server_url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.run_as, self.pg_ctl, "-D", str(self.data), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1"
        self._ctl("-w", "-l", str(self.workdir / "log"), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m fast`: open connections are cut, the server is down on return."""
        self._ctl("-w", "-m", mode, "stop")

    def remove(self) -> None:
        subprocess.run(
            [*self.run_as, self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextmanager
def own_cluster() -> Iterator[Cluster]:
    """A started throwaway cluster, removed afterwards."""
    initdb, pg_ctl = _tool("initdb"), _tool("pg_ctl")
    if not initdb or not pg_ctl:
        reason = "initdb/pg_ctl not found: cannot start a throwaway PostgreSQL cluster"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI requires it)")
        pytest.skip(reason)
    cluster = Cluster(initdb, pg_ctl)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
