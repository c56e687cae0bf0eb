"""Deployment files: .env.example, docker-compose.yml, and the image's own commands.

There is no Docker engine here, so the last test runs what the Dockerfile runs, outside a
container: install from the lock file into a fresh venv, install the project the same way,
migrate, serve, answer /healthz and /readyz, stop cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from app.config import ConfigurationError, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


def documented_settings(text: str) -> set[str]:
    return set(re.findall(r"^#?\s*PRINTHOOK_([A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_env_example_documents_every_setting() -> None:
    documented = documented_settings((ROOT / ".env.example").read_text())
    declared = {name.upper() for name in Settings.model_fields}
    assert declared - documented == set(), "settings missing from .env.example"
    assert documented - declared == set(), ".env.example names unknown settings"


def compose_environment() -> dict[str, str]:
    """What docker-compose.yml sets for the printhook containers, interpolated as compose
    would with POSTGRES_PASSWORD and no PRINTHOOK_TRUSTED_PROXIES in .env."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    values: dict[str, str] = {}
    for name, value in compose["x-printhook"]["environment"].items():
        value = re.sub(r"\$\{POSTGRES_PASSWORD:\?[^}]*\}", "pg-password-0001", value)
        values[name] = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return values


def test_env_example_is_safe_for_a_local_serve_in_the_same_folder(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    settings = load_settings(_env_file=str(tmp_path / ".env"))
    # Every PRINTHOOK_ line is commented out: a local run keeps every default.
    assert settings == Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.environment == "development"
    assert settings.is_sqlite


def test_compose_with_the_example_refuses_to_start_until_secrets_are_filled_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in compose_environment().items():
        monkeypatch.setenv(name, value)
    env_file = tmp_path / ".env"
    env_file.write_text((ROOT / ".env.example").read_text())
    with pytest.raises(ConfigurationError, match="PRINTHOOK_API_KEYS must be set"):
        load_settings(_env_file=str(env_file))
    env_file.write_text(
        (ROOT / ".env.example").read_text()
        + "PRINTHOOK_API_KEYS=4f9c2e7a1b3d5f6a8c0e\nPOSTGRES_PASSWORD=pg-password-0001\n"
    )
    settings = load_settings(_env_file=str(env_file))
    assert settings.environment == "production"
    assert settings.database_url == (
        "postgresql+asyncpg://printhook:pg-password-0001@postgres:5432/printhook"
    )
    assert settings.trusted_proxies == ["127.0.0.1", "::1", "172.16.0.0/12"]


def test_compose_runs_migrate_once_before_the_app_on_a_healthy_postgres() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    postgres, migrate, app = services["postgres"], services["migrate"], services["app"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert postgres["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert "pgdata" in compose["volumes"]
    assert migrate["command"] == ["printhook", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert app["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    assert app["ports"] == ["127.0.0.1:8000:8000"]
    # The image compose runs is the one it builds from this folder.
    assert (migrate["build"], app["build"]) == (".", ".")
    assert migrate["image"] == app["image"]
    for service in (migrate, app):
        assert service["env_file"] == ".env"
        assert service["environment"]["PRINTHOOK_ENVIRONMENT"] == "production"
        url = service["environment"]["PRINTHOOK_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://printhook:${POSTGRES_PASSWORD")
        assert url.endswith("@postgres:5432/printhook")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of the final Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), " ".join(rest.split())))
    return found


def test_dockerfile_runs_as_non_root_with_healthcheck_and_serve() -> None:
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    assert keywords.count("FROM") == 2
    assert all(args.startswith("python:3.11-slim") for kw, args in instructions if kw == "FROM")
    user = [args for kw, args in instructions if kw == "USER"]
    assert user == ["10001:10001"]
    assert ("STOPSIGNAL", "SIGTERM") in instructions
    assert ("CMD", '["printhook", "serve", "--host", "0.0.0.0"]') in instructions
    (healthcheck,) = [args for kw, args in instructions if kw == "HEALTHCHECK"]
    assert "/healthz" in healthcheck


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_images_commands_install_migrate_serve_and_stop_cleanly(tmp_path: Path) -> None:
    instructions = dockerfile_instructions()
    # The build context, as .dockerignore and the COPY lines make it.
    srv = tmp_path / "srv" / "printhook"
    srv.mkdir(parents=True)
    for kw, args in instructions:
        if kw == "COPY" and not args.startswith("--from"):
            *sources, _ = args.split()
            for source in sources:
                src = ROOT / source
                if src.is_dir():
                    shutil.copytree(src, srv / source, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(src, srv / source)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PRINTHOOK_", "VIRTUAL_ENV", "PYTHON"))
    }
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # Every RUN of the build stage that installs or compiles, exactly as written there.
    build_runs = [args for kw, args in instructions if kw == "RUN" and "pip install" in args]
    assert len(build_runs) == 2
    for command in build_runs:
        done = subprocess.run(
            command, shell=True, cwd=srv, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    database = tmp_path / "data" / "printhook.db"
    database.parent.mkdir()
    env["PRINTHOOK_DATABASE_URL"] = f"sqlite+aiosqlite:///{database}"
    env["PRINTHOOK_API_KEYS"] = "packaging-test-key-0123"
    printhook = str(venv / "bin" / "printhook")
    migrated = subprocess.run(
        [printhook, "migrate"], cwd=srv, env=env, capture_output=True, text=True, timeout=60
    )
    assert migrated.returncode == 0, migrated.stderr
    # Logs go to stderr; migrate prints no result.
    assert '"event": "db.migrated"' in migrated.stderr
    assert migrated.stdout == ""

    port = free_port()
    server = subprocess.Popen(
        [printhook, "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=srv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, "printhook serve exited"
                assert time.monotonic() < deadline, "printhook serve did not answer"
                time.sleep(0.1)
        assert health.status_code == 200
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        # The image's HEALTHCHECK command, pointed at this port.
        (healthcheck,) = [args for kw, args in instructions if kw == "HEALTHCHECK"]
        probe = json.loads(healthcheck.split("CMD ", 1)[1])
        probe = [part.replace(":8000/", f":{port}/") for part in probe]
        probe[0] = str(venv / "bin" / probe[0])
        assert subprocess.run(probe, env=env, timeout=10).returncode == 0
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=20)
    assert server.returncode == 0, output[-3000:]
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line["event"] == "http.request" for line in lines)


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_compose_accepts_the_filled_in_example_and_refuses_an_empty_password(
    tmp_path: Path,
) -> None:
    command = compose_command()
    if command is None:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRINTHOOK_", "POSTGRES_"))}
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    empty = subprocess.run(
        [*command, "config"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert empty.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in empty.stderr
    (tmp_path / ".env").write_text(
        (ROOT / ".env.example")
        .read_text()
        .replace("\nPOSTGRES_PASSWORD=\n", "\nPOSTGRES_PASSWORD=pg-password-0001\n")
        .replace("\n# PRINTHOOK_API_KEYS=\n", "\nPRINTHOOK_API_KEYS=4f9c2e7a1b3d5f6a8c0e\n")
    )
    filled = subprocess.run(
        [*command, "config"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert filled.returncode == 0, filled.stderr
    app = yaml.safe_load(filled.stdout)["services"]["app"]
    assert app["environment"]["PRINTHOOK_ENVIRONMENT"] == "production"
    assert app["environment"]["PRINTHOOK_API_KEYS"] == "4f9c2e7a1b3d5f6a8c0e"
    assert app["environment"]["PRINTHOOK_DATABASE_URL"] == (
        "postgresql+asyncpg://printhook:pg-password-0001@postgres:5432/printhook"
    )
    assert app["environment"]["PRINTHOOK_TRUSTED_PROXIES"] == "127.0.0.1,::1,172.16.0.0/12"
    # What the container would be given is a valid production configuration.
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        **{
            name.removeprefix("PRINTHOOK_").lower(): value
            for name, value in app["environment"].items()
            if name.startswith("PRINTHOOK_")
        },
    )
    assert settings.environment == "production"
