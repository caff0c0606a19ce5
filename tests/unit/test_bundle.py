"""The Claude Desktop bundle: `callagent bundle` builds a manifest from the project's own
metadata, packs it with the official tool (`mcpb` from npm's @anthropic-ai/mcpb, installed by
`npm ci` in tests/ts before the tests run: nothing is downloaded here) and `mcpb validate`
accepts it."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from callagent import bundle, registry
from callagent.cli import main as cli_main
from callagent.settings import Settings
from callagent.tools import create_server

ROOT = Path(__file__).resolve().parents[2]
TS_DIR = ROOT / "tests" / "ts"


@pytest.fixture(scope="module")
def mcpb() -> str:
    try:
        return bundle.find_mcpb()
    except bundle.BundleError as exc:
        pytest.fail(f"{exc} (tests/ts/package.json pins it as a devDependency)", pytrace=False)


@pytest.fixture(scope="module")
def built(mcpb: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundle.build(tmp_path_factory.mktemp("dist") / "callagent.mcpb", mcpb=mcpb)


@pytest.fixture(scope="module")
def packed_manifest(built: Path) -> dict[str, Any]:
    with zipfile.ZipFile(built) as z:
        data: dict[str, Any] = json.loads(z.read("manifest.json"))
    return data


def test_the_bundle_tool_is_the_pinned_official_one(mcpb: str) -> None:
    pinned = json.loads((TS_DIR / "package.json").read_text())["devDependencies"]["@anthropic-ai/mcpb"]
    version = subprocess.run([mcpb, "--version"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert version.strip() == pinned


def test_mcpb_validate_accepts_the_packed_manifest(mcpb: str, built: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(built) as z:
        z.extract("manifest.json", tmp_path)
    result = subprocess.run(
        [mcpb, "validate", str(tmp_path / "manifest.json")], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validation passes" in result.stdout


def test_mcpb_validate_rejects_a_broken_manifest(mcpb: str, packed_manifest: dict[str, Any], tmp_path: Path) -> None:
    """The validation is real: a manifest without its server is refused."""
    broken = {k: v for k, v in packed_manifest.items() if k != "server"}
    (tmp_path / "manifest.json").write_text(json.dumps(broken))
    result = subprocess.run(
        [mcpb, "validate", str(tmp_path / "manifest.json")], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode != 0


def test_the_bundle_holds_the_server_and_what_uv_installs_it_from(built: Path) -> None:
    with zipfile.ZipFile(built) as z:
        names = set(z.namelist())
        assert z.read("uv.lock") == (ROOT / "uv.lock").read_bytes()
        assert z.read("server.py") == (ROOT / "server.py").read_bytes()
    assert {"manifest.json", "server.py", "pyproject.toml", "uv.lock", "README.md"} <= names
    assert {"callagent/__init__.py", "callagent/tools.py", "callagent/settings.py"} <= names
    package = {p.relative_to(ROOT).as_posix() for p in (ROOT / "callagent").rglob("*") if p.is_file()}
    package = {p for p in package if "__pycache__" not in p and not p.endswith(".pyc")}
    assert package <= names  # templates and static files too
    assert not any(n.startswith(("devstack/", "tests/", "bench/")) for n in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if re.search(r"(^|/)\.env", n)], "a settings file would carry secrets"


def test_the_bundled_pyproject_lets_uv_install_it_anywhere(built: Path) -> None:
    with zipfile.ZipFile(built) as z:
        bundled = tomllib.loads(z.read("pyproject.toml").decode())
    original = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert bundled.get("tool", {}).get("uv", {}).get("python-downloads") != "never"
    assert bundled["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["callagent"]
    # What uv.lock was made from is unchanged, so `uv run --frozen` installs exactly the lock.
    for key in ("name", "version", "dependencies", "requires-python"):
        assert bundled["project"][key] == original["project"][key]
    assert bundled["dependency-groups"] == original["dependency-groups"]


def test_manifest_comes_from_the_project(packed_manifest: dict[str, Any]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    m = packed_manifest
    assert m["manifest_version"] == bundle.MANIFEST_VERSION == "0.4"
    assert (m["name"], m["version"], m["description"]) == (project["name"], project["version"], project["description"])
    assert m["server"]["type"] == "uv"
    assert m["server"]["entry_point"] == "server.py"
    assert m["server"]["mcp_config"]["args"][-1] == "server.py"
    assert {"--frozen", "--no-dev"} <= set(m["server"]["mcp_config"]["args"])
    tools = create_server(Settings.model_construct())._tool_manager.list_tools()
    assert [t["name"] for t in m["tools"]] == [t.name for t in tools]
    assert all(t["description"].strip() for t in m["tools"])
    assert m["tools_generated"] is False


def test_user_config_asks_for_what_the_server_needs(packed_manifest: dict[str, Any]) -> None:
    config = packed_manifest["user_config"]
    env = packed_manifest["server"]["mcp_config"]["env"]
    described = {v.name: v for v in registry.environment_variables()}
    required = {k for k, v in config.items() if v.get("required")}
    assert required == {
        "livekit_url",
        "livekit_api_key",
        "livekit_api_secret",
        "sip_outbound_trunk_id",
        "callagent_caller_name",
    }
    assert {k for k, v in config.items() if v.get("sensitive")} == {"livekit_api_key", "livekit_api_secret"}
    # Every entry reaches the server as its environment variable; an optional one has a default,
    # so no unset `${user_config.…}` placeholder is ever passed on.
    assert env == {name: f"${{user_config.{name.lower()}}}" for name in bundle.USER_SETTINGS}
    for key, entry in config.items():
        assert entry["description"] == described[key.upper()].description
        assert entry["required"] or "default" in entry


def test_without_the_bundle_tool_the_error_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle.shutil, "which", lambda _name: None)
    with pytest.raises(bundle.BundleError, match=r"npm ci"):
        bundle.find_mcpb()


def test_the_cli_command(mcpb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x" / "callagent.mcpb"
    assert cli_main(["bundle", "-o", str(out), "--mcpb", mcpb]) == 0
    assert zipfile.is_zipfile(out)
    assert str(out) in capsys.readouterr().out
    assert cli_main(["bundle", "-o", str(tmp_path / "y.mcpb"), "--mcpb", str(tmp_path / "no-such-mcpb")]) == 1
    assert "no-such-mcpb: not an executable" in capsys.readouterr().err
    assert not (tmp_path / "y.mcpb").exists()
