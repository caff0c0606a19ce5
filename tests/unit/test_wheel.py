"""The wheel stands on its own: built with `uv build`, installed into a fresh virtual environment
with no checkout on the path, its `callagent-mcp` spawned by the TypeScript MCP SDK client (the
library Claude Desktop uses) from a folder outside the repo, which lists the tools and calls
dial_policy; the settings come from the environment, `--env-file` and the user's config folder,
in that order.

Nothing is downloaded: the wheel is built and installed with `--offline` from uv's cache, which
`uv sync` filled: the dependencies at uv.lock's versions (`uv sync` into the fresh environment),
then the wheel, then `uv pip check` that every requirement the wheel declares is met. One wheel
and one environment serve the whole session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_ts_client import TS_DIR, node_with_sdk

ROOT = Path(__file__).resolve().parents[2]
CLIENT = TS_DIR / "list_tools.mjs"
TOOLS = {"make_phone_call", "wait_for_call", "get_call", "list_calls", "end_call", "dial_policy"}
COMMANDS = {"callagent", "callagent-mcp", "callagent-worker"}
# The environment as the session started (tests/unit/conftest.py changes XDG_CONFIG_HOME per test).
START_ENV = dict(os.environ)


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` names itself in $UV
    if not uv:
        pytest.fail("uv not found (UV unset, not on PATH): the wheel is built with `uv build`", pytrace=False)
    return uv


def _run(argv: list[str | Path], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    result = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"`{' '.join(map(str, argv))}` (in {cwd}) exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}",
            pytrace=False,
        )
    return result.stdout


def _uv_env() -> dict[str, str]:
    env = {k: v for k, v in START_ENV.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """The wheel, built once, installed into a fresh venv outside the repo."""
    base = tmp_path_factory.mktemp("wheel")
    uv, env = _uv(), _uv_env()
    _run([uv, "build", "--wheel", "--offline", "-o", base / "dist"], cwd=ROOT, env=env)
    (wheel,) = (base / "dist").glob("callagent-*.whl")
    venv = base / "venv"
    python = venv / "bin" / "python"
    _run([uv, "venv", "--offline", "--python", sys.executable, venv], cwd=base, env=env)
    # The dependencies at uv.lock's versions, from uv's cache. (`uv pip install --offline WHEEL`
    # would resolve them anew, which needs each binary wheel's metadata for this platform, and
    # the cache need not hold it: `uv sync` installs from the lock without asking.)
    _run(
        [uv, "sync", "--frozen", "--offline", "--no-dev", "--no-install-project"],
        cwd=ROOT,
        env={**env, "UV_PROJECT_ENVIRONMENT": str(venv)},
    )
    _run([uv, "pip", "install", "--offline", "--no-deps", "--python", python, wheel], cwd=base, env=env)
    # Every requirement the wheel declares is met (and nothing else is broken).
    _run([uv, "pip", "check", "--python", python], cwd=base, env=env)
    yield Installed(wheel, venv)


def clean_env(tmp: Path, **settings: str) -> dict[str, str]:
    """No callagent settings from outside, no checkout on the path, a config folder of the test's own."""
    env = {
        k: v
        for k, v in START_ENV.items()
        if not k.startswith(("CALLAGENT_", "LIVEKIT_", "DIAL_", "MCP_", "OPENAI_", "SIP_"))
        and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "XDG_CONFIG_HOME")
    }
    env.update(
        {
            "XDG_CONFIG_HOME": str(tmp / "config"),
            "CALLAGENT_DB_URL": f"sqlite:///{tmp / 'data' / 'calls.db'}",
            "CALLAGENT_RECORDINGS_DIR": str(tmp / "recordings"),
            **settings,
        }
    )
    return env


def test_the_wheel_holds_the_package_and_its_data_not_the_bed(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as z:
        names = set(z.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = {
            line.split("=")[0].strip()
            for line in z.read(entry_points).decode().splitlines()
            if "=" in line and not line.startswith("[")
        }
    assert scripts == COMMANDS  # devstack is a tool of the checkout (hatch_build.py)
    assert not [n for n in names if n.startswith("devstack/")]
    for data in ("callagent/console/templates/base.html", "callagent/console/static/console.css"):
        assert data in names, sorted(names)
    for name in COMMANDS:
        assert (installed.bin / name).exists(), name
    assert not (installed.bin / "devstack").exists()


def test_the_installed_package_is_the_venvs_not_the_checkout(installed: Installed, tmp_path: Path) -> None:
    probe = (
        "import json, callagent, callagent.settings as s, callagent.worker_main, callagent.agent, callagent.console.app\n"
        "print(json.dumps({'file': callagent.__file__, 'env_file': str(s.ENV_FILE), 'files': list(map(str, s.env_files()))}))\n"
    )
    out = json.loads(_run([installed.bin / "python", "-c", probe], cwd=tmp_path, env=clean_env(tmp_path)))
    assert Path(out["file"]).resolve().is_relative_to(installed.venv.resolve()), out
    assert out["env_file"] == "None"  # no project .env outside a checkout
    assert out["files"] == [str(tmp_path / "config" / "callagent" / ".env")]


def test_callagent_mcp_from_the_wheel_serves_a_typescript_sdk_client(installed: Installed, tmp_path: Path) -> None:
    node = node_with_sdk()
    elsewhere = tmp_path / "elsewhere"  # the client's working directory: no checkout there or above
    elsewhere.mkdir()
    user_env = tmp_path / "config" / "callagent" / ".env"
    user_env.parent.mkdir(parents=True)
    user_env.write_text("DIAL_MAX_PER_HOUR=17\nDIAL_MAX_PER_NUMBER_PER_DAY=5\nDIAL_MAX_CONCURRENT=9\n")
    explicit = tmp_path / "explicit.env"
    explicit.write_text("DIAL_MAX_PER_HOUR=23\nDIAL_MAX_CONCURRENT=2\n")
    env = clean_env(tmp_path, DIAL_MAX_CONCURRENT="4")  # the environment beats both files

    result = subprocess.run(
        [node, str(CLIENT), str(installed.bin / "callagent-mcp"), "--env-file", str(explicit)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,  # the client gives up by itself after 30 s
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n--- stderr (client and server) ---\n{result.stderr[-5000:]}"
    (line,) = [line for line in result.stdout.splitlines() if line.strip()]
    out = json.loads(line)
    assert out["server"]["name"] == "callagent"
    assert set(out["toolNames"]) >= TOOLS, out["toolNames"]
    policy = out["dialPolicy"]
    assert policy["isError"] is False, policy
    assert policy["structuredContent"]["limits"] == {
        "max_concurrent": 4,  # the environment
        "max_per_hour": 23,  # --env-file, over the user's config folder
        "max_per_number_per_day": 5,  # the user's config folder
    }
    assert "Traceback" not in result.stderr


def test_a_missing_env_file_is_named(installed: Installed, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.env"
    for command in ("callagent-mcp", "callagent-worker"):
        argv = [installed.bin / command, "--env-file", missing] + (["start"] if command == "callagent-worker" else [])
        result = subprocess.run(
            [str(a) for a in argv], cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2, (command, result.stderr)
        assert f"{missing} (--env-file, CALLAGENT_ENV_FILE) does not exist" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
