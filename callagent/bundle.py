"""An MCP Bundle (`.mcpb`) of the MCP server, for one-click install in Claude Desktop.

    uv run callagent bundle [-o dist/callagent.mcpb] [--mcpb PATH]

The manifest (MCPB manifest_version 0.4, server type "uv") is built from the project's own
metadata: name, version and description from pyproject.toml; the tools (names and
descriptions) from `create_server()`; the settings a user must give (`user_config`, secrets
marked sensitive) from `callagent.settings.Settings` through `callagent.registry`. The package,
pyproject.toml, uv.lock, README.md and server.py are staged in a temporary folder with it and
packed by the official bundle tool, `mcpb` from npm's @anthropic-ai/mcpb (installed by
`npm ci` in tests/ts, or anywhere on PATH), after `mcpb validate` passes on the manifest.
Nothing is downloaded.

Claude Desktop runs the bundle with uv: `uv run --frozen --no-dev server.py` in the unpacked
folder, which installs the locked dependencies (and a Python, if needed) on first start.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any

from callagent.registry import EnvVar, RegistryError, environment_variables, project_metadata
from callagent.settings import PROJECT_DIR

__all__ = [
    "BUNDLED",
    "DEFAULT_OUTPUT",
    "MANIFEST_VERSION",
    "BundleError",
    "build",
    "find_mcpb",
    "manifest",
    "stage",
]

MANIFEST_VERSION = "0.4"  # the newest MCPB manifest version; the first with server type "uv"
DEFAULT_OUTPUT = PROJECT_DIR / "dist" / "callagent.mcpb"
ENTRY_POINT = "server.py"
# What goes into the bundle besides manifest.json: the server and what uv needs to install it.
BUNDLED = ("callagent", ENTRY_POINT, "pyproject.toml", "uv.lock", "README.md")
# Bundled when the checkout has them: hatchling's build hook (uv installs the project with it).
OPTIONAL = ("hatch_build.py",)
# Never packed: caches, and any settings file (it would carry the operator's secrets).
_IGNORED = ("__pycache__", "*.pyc", "*.pyo", ".env", ".env.*", ".mypy_cache", ".pytest_cache", ".ruff_cache")
_TS_DIR = PROJECT_DIR / "tests" / "ts"

# What the user fills in when installing: the settings the server cannot place a call without,
# and the name every callee hears. Everything else keeps its default, or comes from
# ~/.config/callagent/.env.
USER_SETTINGS: dict[str, str] = {
    "LIVEKIT_URL": "LiveKit URL",
    "LIVEKIT_API_KEY": "LiveKit API key",
    "LIVEKIT_API_SECRET": "LiveKit API secret",
    "SIP_OUTBOUND_TRUNK_ID": "Outbound SIP trunk id",
    "CALLAGENT_CALLER_NAME": "Calling on behalf of",
    "CALLAGENT_DEFAULT_REGION": "Default region",
}
_ALWAYS_REQUIRED = frozenset({"CALLAGENT_CALLER_NAME"})  # the disclosure names the caller: ask for it

LONG_DESCRIPTION = (
    "Places outbound phone calls from Claude: an AI voice agent on LiveKit phones the person, says it "
    "is an AI assistant and on whose behalf it calls, holds the conversation toward the goal it was "
    "given and hangs up; Claude gets back the status, transcript, summary and outcome.\n\n"
    "Needs a LiveKit server with an outbound SIP trunk, and callagent's calling worker running "
    "against the same call store (by default ~/.local/share/callagent/calls.db on this machine). "
    "Every call rings a real phone: the operator's dial policy (countries, quiet hours, limits, "
    "do-not-call and crisis-line lists) applies to each one."
)


class BundleError(Exception):
    """The bundle could not be built; the message says why."""


def manifest() -> dict[str, Any]:
    """manifest.json for the bundle."""
    project = project_metadata()
    settings = {var.name: var for var in environment_variables()}
    missing = sorted(set(USER_SETTINGS) - set(settings))
    if missing:
        raise BundleError(f"not settings the server reads: {', '.join(missing)}")
    user_config = {_key(name): _user_config(settings[name], title) for name, title in USER_SETTINGS.items()}
    authors = project.get("authors") or []
    author = {"name": str(authors[0].get("name") or authors[0].get("email"))} if authors else {"name": "callagent"}
    data: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "name": str(project["name"]),
        "display_name": str(project["name"]),
        "version": str(project["version"]),
        "description": str(project["description"]),
        "long_description": LONG_DESCRIPTION,
        "author": author,
        "server": {
            "type": "uv",
            "entry_point": ENTRY_POINT,
            "mcp_config": {
                "command": "uv",
                "args": ["run", "--directory", "${__dirname}", "--frozen", "--no-dev", ENTRY_POINT],
                "env": {name: f"${{user_config.{_key(name)}}}" for name in USER_SETTINGS},
            },
        },
        "tools": _tools(),
        "tools_generated": False,
        "compatibility": {
            "platforms": ["darwin", "linux"],
            "runtimes": {"python": str(project.get("requires-python", ">=3.11"))},
        },
        "user_config": user_config,
    }
    if project.get("license"):
        license_ = project["license"]
        data["license"] = license_ if isinstance(license_, str) else str(license_.get("text", ""))
    if project.get("keywords"):
        data["keywords"] = [str(k) for k in project["keywords"]]
    return data


def stage(dest: Path) -> None:
    """Write manifest.json and copy the bundled files into `dest` (an empty folder)."""
    for name in BUNDLED:
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns(*_IGNORED))
        elif source.is_file():
            shutil.copy2(source, dest / name)
        else:
            raise BundleError(f"{source} is missing: build the bundle from a callagent checkout")
    for name in OPTIONAL:
        if (PROJECT_DIR / name).is_file():
            shutil.copy2(PROJECT_DIR / name, dest / name)
    (dest / "pyproject.toml").write_text(_bundled_pyproject(PROJECT_DIR / "pyproject.toml"), encoding="utf-8")
    (dest / "manifest.json").write_text(json.dumps(manifest(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def find_mcpb(explicit: str | None = None) -> str:
    """The `mcpb` command: `explicit`, $MCPB, tests/ts's copy (npm ci there), or one on PATH."""
    if explicit:
        if found := shutil.which(explicit):
            return found
        raise BundleError(f"--mcpb {explicit}: not an executable")
    candidates = [os.environ.get("MCPB"), str(_TS_DIR / "node_modules" / ".bin" / "mcpb"), "mcpb"]
    for candidate in candidates:
        if candidate and (found := shutil.which(candidate)):
            return found
    raise BundleError(
        "the bundle tool `mcpb` (npm @anthropic-ai/mcpb) was not found: install it with "
        f"`cd {_TS_DIR} && npm ci` (Node.js 20+), or `npm install -g @anthropic-ai/mcpb`, or pass --mcpb PATH"
    )


def build(output: Path = DEFAULT_OUTPUT, *, mcpb: str | None = None) -> Path:
    """Stage, validate and pack the bundle into `output`; returns its path."""
    tool = find_mcpb(mcpb)
    output = output.expanduser().absolute()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="callagent-mcpb-") as tmp:
        staged = Path(tmp) / "callagent"
        staged.mkdir()
        try:
            stage(staged)
        except RegistryError as exc:
            raise BundleError(str(exc)) from None
        _run([tool, "validate", str(staged / "manifest.json")], "mcpb validate")
        _run([tool, "pack", str(staged), str(output)], "mcpb pack")
    if not zipfile.is_zipfile(output):
        raise BundleError(f"mcpb pack did not write a bundle at {output}")
    return output


def _run(command: list[str], what: str) -> None:
    # No terminal: `mcpb pack` asks questions only when manifest.json is missing, which stage() rules out.
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BundleError(f"{what} failed: {exc}") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise BundleError(f"{what} failed (exit status {result.returncode}):\n{output[-4000:]}")


def _tools() -> list[dict[str, str]]:
    """Name and description of every tool the MCP server lists."""
    from callagent.settings import Settings
    from callagent.tools import create_server

    # Defaults only: the manifest must not depend on the environment of the machine building it.
    server = create_server(Settings.model_construct())
    return [
        {"name": tool.name, "description": inspect.cleandoc(tool.description or tool.title or tool.name)}
        for tool in server._tool_manager.list_tools()
    ]


def _key(env: str) -> str:
    return env.lower()


def _user_config(var: EnvVar, title: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": "string",
        "title": title,
        "description": var.description,
        "required": var.required or var.name in _ALWAYS_REQUIRED,
    }
    if var.secret:
        entry["sensitive"] = True
    if var.default is not None and not entry["required"]:
        entry["default"] = var.default
    return entry


def _bundled_pyproject(path: Path) -> str:
    """pyproject.toml as the bundle needs it: uv may download a Python (the checkout forbids it
    for its own tests), and the wheel holds only the package (not the local telephony bed).
    The dependencies stay as they are, so uv.lock still matches."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^python-downloads[ \t]*=[ \t]*"never"[ \t]*(#.*)?\n', "", text)
    text = re.sub(r"(?m)^(packages\s*=\s*\[)([^\]]*)\]", _only_callagent, text)
    parsed = tomllib.loads(text)
    if parsed.get("tool", {}).get("uv", {}).get("python-downloads") == "never":
        raise BundleError("could not lift python-downloads = never from pyproject.toml for the bundle")
    build = parsed.get("tool", {}).get("hatch", {}).get("build", {})
    wheel = build.get("targets", {}).get("wheel", {})
    if any(p not in BUNDLED for p in wheel.get("packages", [])):
        raise BundleError(f"pyproject.toml's wheel packages {wheel['packages']} are not all in the bundle")
    for hooks in (build.get("hooks", {}), wheel.get("hooks", {})):
        if "custom" in hooks:
            hook = str(hooks["custom"].get("path", "hatch_build.py"))
            if hook not in BUNDLED + OPTIONAL or not (path.parent / hook).is_file():
                raise BundleError(f"pyproject.toml's build hook {hook} would not be in the bundle")
    return text


def _only_callagent(m: re.Match[str]) -> str:
    kept = [p for p in re.findall(r'"([^"]+)"', m.group(2)) if p in BUNDLED]
    return m.group(1) + ", ".join(f'"{p}"' for p in kept) + "]"
