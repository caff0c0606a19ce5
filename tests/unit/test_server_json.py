"""The MCP registry entry: server.json is what `python -m callagent.registry` generates from
the project's metadata, it validates against the registry's published schema (vendored in
schemas/), it describes the environment the server reads, and the README carries the
`mcp-name:` line the registry checks on PyPI. The command the registry runs, `callagent mcp`,
serves MCP on stdio."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import SecretStr

from callagent import registry
from callagent.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {"LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "SIP_OUTBOUND_TRUNK_ID"}
SECRETS = {"LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "CALLAGENT_DB_URL"}


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "server.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def env_vars(committed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in committed["packages"][0]["environmentVariables"]}


def test_committed_server_json_is_what_the_generator_writes() -> None:
    generated = registry.render(registry.server_json())
    committed = (ROOT / "server.json").read_text(encoding="utf-8")
    assert committed == generated, "server.json is out of date: run `uv run python -m callagent.registry`"
    assert registry.main(["--check"]) == 0


def test_check_reports_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "server.json"
    stale.write_text("{}\n", encoding="utf-8")
    assert registry.main(["--check", "-o", str(stale)]) == 1
    assert registry.main(["-o", str(stale)]) == 0
    assert registry.main(["--check", "-o", str(stale)]) == 0


def test_validates_against_the_vendored_registry_schema(committed: dict[str, Any]) -> None:
    schema = json.loads(registry.SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["$id"] == committed["$schema"] == registry.SCHEMA_URL
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(committed), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_catches_what_the_registry_refuses(committed: dict[str, Any]) -> None:
    """The vendored schema really is checked (a broken entry fails), not read and ignored."""
    schema = json.loads(registry.SCHEMA_FILE.read_text(encoding="utf-8"))
    bad_name = {**committed, "name": "no-slash"}
    long_description = {**committed, "description": "x" * 101}
    for bad in (bad_name, long_description):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema, cls=jsonschema.Draft7Validator)


def test_names_the_pypi_package_run_with_uvx(committed: dict[str, Any]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (package,) = committed["packages"]
    assert committed["version"] == package["version"] == project["version"]
    assert committed["description"] == project["description"]
    assert package["registryType"] == "pypi"
    assert package["identifier"] == project["name"] == "callagent"
    assert package["runtimeHint"] == "uvx"
    assert package["transport"] == {"type": "stdio"}
    # `uvx callagent==V mcp`: the `callagent` command exists and `mcp` is its stdio server.
    assert project["scripts"]["callagent"] == "callagent.cli:main"
    assert [a["value"] for a in package["packageArguments"]] == ["mcp"]
    assert "registryBaseUrl" not in package  # clients pass it to uvx as --index-url; pypi.org is no index URL


def test_every_setting_the_server_reads_is_described(env_vars: dict[str, dict[str, Any]]) -> None:
    fields = Settings.model_fields
    assert set(registry.NOT_READ_BY_THE_SERVER) <= set(fields), "stale names in NOT_READ_BY_THE_SERVER"
    served = {str(f.validation_alias) for name, f in fields.items() if name not in registry.NOT_READ_BY_THE_SERVER}
    assert served <= set(env_vars)
    assert all(v["description"].strip() for v in env_vars.values())
    # The worker's model key is not the server's business.
    assert "OPENAI_API_KEY" not in env_vars and "CALLAGENT_CONSOLE_TOKEN" not in env_vars


def test_required_and_secret_settings_are_marked(env_vars: dict[str, dict[str, Any]]) -> None:
    assert {n for n, v in env_vars.items() if v.get("isRequired")} == REQUIRED
    secret_fields = {
        str(f.validation_alias)
        for name, f in Settings.model_fields.items()
        if name not in registry.NOT_READ_BY_THE_SERVER and SecretStr in getattr(f.annotation, "__args__", ())
    }
    assert secret_fields, "no SecretStr setting found: the check below would check nothing"
    assert secret_fields | SECRETS <= {n for n, v in env_vars.items() if v.get("isSecret")}
    assert not env_vars["LIVEKIT_URL"].get("isSecret")


def test_defaults_and_choices_come_from_settings(env_vars: dict[str, dict[str, Any]]) -> None:
    assert env_vars["CALLAGENT_DEFAULT_REGION"]["default"] == "US"
    assert env_vars["DIAL_QUIET_HOURS"]["default"] == "21:00-08:00"
    assert env_vars["DIAL_REQUIRE_REASONING"] == {**env_vars["DIAL_REQUIRE_REASONING"], "format": "boolean"}
    assert env_vars["CALLAGENT_RING_TIMEOUT_S"]["format"] == "number"
    assert env_vars["CALLAGENT_RECORDING"]["choices"] == ["off", "on_request", "always"]
    assert "default" not in env_vars["CALLAGENT_DB_URL"]  # this machine's home directory is nobody else's


def test_a_setting_without_a_description_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(registry.DESCRIPTIONS, "CALLAGENT_RING_TIMEOUT_S")
    with pytest.raises(registry.RegistryError, match="CALLAGENT_RING_TIMEOUT_S has no description"):
        registry.server_json()


def test_readme_proves_the_name_for_pypi(committed: dict[str, Any]) -> None:
    """The registry accepts a PyPI package only if its README says `mcp-name: <name>`,
    followed by whitespace, a tag or a comment's end."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert committed["name"] == registry.SERVER_NAME
    assert re.search(rf"mcp-name: {re.escape(committed['name'])}(\s|<|-->)", readme)


def test_callagent_mcp_serves_mcp_on_stdio(tmp_path: Path) -> None:
    """What a registry client runs (`uvx callagent==V mcp`) answers initialize and lists the tools."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "SIP_", "CALLAGENT_", "DIAL_"))}
    env |= {
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "CALLAGENT_DB_URL": f"sqlite:///{tmp_path / 'calls.db'}",
    }
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    # stdin stays open until the replies are in: a stdio server may stop at end of input
    # before it answers what it has read.
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from callagent.cli import main; sys.exit(main(['mcp']))"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdin is not None and proc.stdout is not None
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    replies: dict[int, dict[str, Any]] = {}
    try:
        proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        proc.stdin.flush()
        while 2 not in replies and (line := proc.stdout.readline()):
            reply = json.loads(line)
            replies[reply.get("id")] = reply
    finally:
        watchdog.cancel()
        proc.stdin.close()
        proc.wait(timeout=30)
        stderr = proc.stderr.read() if proc.stderr else ""
    assert replies.get(1, {}).get("result", {}).get("serverInfo", {}).get("name") == "callagent", stderr[-2000:]
    assert {t["name"] for t in replies[2]["result"]["tools"]} >= {"make_phone_call", "dial_policy", "end_call"}
