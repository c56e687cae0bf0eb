"""The documentation cannot drift from the code: the configuration reference and .env.example
are generated from Settings, links resolve, exit codes and commands are all documented."""

from __future__ import annotations

import argparse
import ipaddress
import re
from pathlib import Path

import pytest

from app import configdoc
from app.cli import build_parser
from app.config import Settings
from app.exits import ExitCode

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


def test_configuration_reference_and_env_example_are_up_to_date(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = configdoc.main(["--check"])
    assert code == 0, capsys.readouterr().err


def test_the_check_notices_a_stale_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "CONFIGURATION.md"
    stale.write_text(configdoc.markdown().replace("PRINTHOOK_RETENTION_DAYS", "PRINTHOOK_GONE"))
    monkeypatch.setattr(configdoc, "ROOT", tmp_path)
    monkeypatch.setattr(configdoc, "CONFIGURATION_MD", stale)
    monkeypatch.setattr(configdoc, "ENV_EXAMPLE", ROOT / ".env.example")
    assert configdoc.main(["--check"]) == 1
    assert "out of date: CONFIGURATION.md" in capsys.readouterr().err


def test_every_setting_has_a_description_a_row_and_an_env_example_line() -> None:
    reference = (ROOT / "docs" / "CONFIGURATION.md").read_text()
    example = (ROOT / ".env.example").read_text()
    for name, field in Settings.model_fields.items():
        variable = f"PRINTHOOK_{name.upper()}"
        assert field.description, f"{name} has no description"
        assert re.search(rf"^\| `{variable}` \|", reference, re.MULTILINE), variable
        assert re.search(rf"^# {variable}=", example, re.MULTILINE), variable


def test_readme_is_a_front_door() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    first_block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    assert first_block.splitlines()[0].startswith("make run")
    assert first_block.splitlines()[1].startswith("make test")
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert "printhook on **8000**" in quickstart
    assert "Printess simulator on\n**9000**" in quickstart
    assert "docs/CONFIGURATION.md" in text
    # The design internals live in docs/, not here.
    for internal in ("SKIP LOCKED", "jitter", "Rank", "placement-outcome-unknown"):
        assert internal not in text


def relative_links(path: Path) -> list[str]:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text())
    return [link for link in links if not re.match(r"[a-z]+://", link)]


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    for link in relative_links(page):
        assert (page.parent / link).exists(), f"{page.name} links to missing {link}"


def test_every_exit_code_is_documented_with_its_number() -> None:
    cli = (ROOT / "docs" / "CLI.md").read_text()
    table = cli.split("## Exit codes", 1)[1]
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \| \S", table, re.MULTILINE), code.name


def test_every_command_is_documented() -> None:
    cli = (ROOT / "docs" / "CLI.md").read_text()
    (commands,) = [
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    for name in commands.choices:
        assert f"`printhook {name}" in cli, name


def test_metrics_are_allowed_from_exactly_the_private_ranges_the_docs_name() -> None:
    nginx = (ROOT / "docs" / "nginx.conf").read_text()
    block = nginx.split("location = /metrics {", 1)[1].split("}", 1)[0]
    allowed = {ipaddress.ip_network(a) for a in re.findall(r"allow ([0-9a-f:./]+);", block)}
    assert "deny all;" in block
    private = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}
    assert allowed == {ipaddress.ip_network(n) for n in private | {"127.0.0.1", "::1"}}
    operations = " ".join((ROOT / "docs" / "OPERATIONS.md").read_text().split())
    for network in private:
        assert f"`{network}`" in operations
