"""callagent's entry in the MCP registry: `server.json`, generated from the project's own metadata.

    uv run python -m callagent.registry            # rewrite server.json at the project root
    uv run python -m callagent.registry --check    # exit 1 if server.json is out of date

Name, version and description come from pyproject.toml; every environment variable the MCP
server reads comes from `callagent.settings.Settings` (a field's validation_alias is its
variable): its default, its choices, whether it is secret (a SecretStr, an API key or token, a
database URL that may carry a password) and whether it is required (what
`missing_livekit_settings` asks for). Only the one-line descriptions live here, and a field
without one is an error, so a new setting cannot be left out of the registry entry unnoticed.
Settings only the calling worker or the console reads are left out (`NOT_READ_BY_THE_SERVER`).

The registry runs a PyPI package as `uvx callagent==VERSION ARGS…`: `callagent` is the
operator's command line, and `callagent mcp` starts the MCP server on stdio.

`callagent.bundle` uses the same descriptions for the Claude Desktop bundle's settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
import types
import typing
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import SecretStr

from callagent import settings as settings_module
from callagent.settings import PROJECT_DIR, Settings, missing_livekit_settings

__all__ = [
    "SCHEMA_FILE",
    "SCHEMA_URL",
    "SERVER_JSON",
    "SERVER_NAME",
    "EnvVar",
    "RegistryError",
    "environment_variables",
    "main",
    "project_metadata",
    "render",
    "server_json",
]

# The registry name. The PyPI package proves it owns it with a line `mcp-name: <this>` in its
# README (the package description on PyPI).
SERVER_NAME = "io.github.callagent/callagent"
SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
SCHEMA_FILE = PROJECT_DIR / "schemas" / "server.schema.json"  # the vendored copy (schemas/README.md)
SERVER_JSON = PROJECT_DIR / "server.json"
PYPROJECT = PROJECT_DIR / "pyproject.toml"
TITLE = "callagent"
# `uvx callagent==VERSION mcp`: the operator CLI's `mcp` command is the stdio MCP server.
MCP_COMMAND = "mcp"

# Read by the calling worker or the console only, never by the MCP server (stdio): not in the
# registry entry. The field names are checked against Settings by the tests.
NOT_READ_BY_THE_SERVER: dict[str, str] = {
    "silence_timeout_s": "worker",
    "worker_max_calls": "worker",
    "worker_port": "worker",
    "worker_host": "worker",
    "worker_idle_processes": "worker",
    "turn_detection": "worker",
    "openai_api_key": "worker",
    "openai_base_url": "worker",
    "llm_model": "worker",
    "stt_model": "worker",
    "tts_model": "worker",
    "tts_voice": "worker",
    "realtime_model": "worker",
    "transfer_ring_timeout_s": "worker",
    "mcp_http_token": "the HTTP transport (this entry runs stdio)",
    "mcp_http_no_auth": "the HTTP transport (this entry runs stdio)",
    "mcp_http_max_connections": "the HTTP transport (this entry runs stdio)",
    "mcp_http_keepalive_timeout_s": "the HTTP transport (this entry runs stdio)",
    "mcp_http_header_timeout_s": "the HTTP transport (this entry runs stdio)",
    "console_token": "console",
    "console_tz": "console",
}

# Secret although not a SecretStr: an API key (its secret's partner), a URL that may hold a password.
_ALSO_SECRET = frozenset({"CALLAGENT_DB_URL"})
_SECRET_SUFFIXES = ("_API_KEY", "_SECRET", "_TOKEN", "_PASSWORD")

DESCRIPTIONS: dict[str, str] = {
    "LIVEKIT_URL": "The LiveKit server's URL, e.g. wss://your-project.livekit.cloud.",
    "LIVEKIT_API_KEY": "The LiveKit API key.",
    "LIVEKIT_API_SECRET": "The LiveKit API secret.",
    "SIP_OUTBOUND_TRUNK_ID": "The outbound SIP trunk registered in LiveKit that calls go out on (ST_…).",
    "CALLAGENT_AGENT_NAME": "The calling worker's name for explicit dispatch; server and worker must agree.",
    "CALLAGENT_DB_URL": "The call store shared with the calling worker: sqlite:///PATH or postgresql://…; "
    "default: ~/.local/share/callagent/calls.db.",
    "CALLAGENT_CALLER_NAME": "On whose behalf the agent calls: the callee hears it in the first sentence "
    "of every call.",
    "CALLAGENT_DEFAULT_REGION": "Region (ISO code) for numbers given without +country.",
    "CALLAGENT_AGENT_JOIN_TIMEOUT_S": "Seconds to wait for a worker to take a call before giving up (nothing is dialed).",
    "CALLAGENT_AGENT_START_TIMEOUT_S": "Seconds more a worker that took a call may take to start it and join.",
    "CALLAGENT_RING_TIMEOUT_S": "Seconds the phone rings before the call counts as not answered.",
    "CALLAGENT_MAX_DURATION_S": "A call's default longest length, in seconds.",
    "CALLAGENT_MAX_DURATION_CAP_S": "The hard cap on a call's length, in seconds.",
    "CALLAGENT_MAX_HOLD_S": "Seconds the agent waits on hold for a person (at most the call's length).",
    "CALLAGENT_STALE_AFTER_S": "A live call whose worker sent no heartbeat for this many seconds is hung up "
    "and marked failed.",
    "CALLAGENT_LIVEKIT_TIMEOUT_S": "Seconds before a LiveKit API request gives up.",
    "CALLAGENT_LOG_LEVEL": "Log level: DEBUG, INFO, WARNING or ERROR (logs go to stderr, numbers masked, "
    "secrets never shown).",
    "CALLAGENT_LOG_FORMAT": "Log format: text for people, json for tools.",
    "DIAL_ALLOW": "Only these numbers or prefixes may be called (comma-separated, e.g. +14155550100,+1212*).",
    "DIAL_DENY": "Numbers or prefixes never called (comma-separated).",
    "DIAL_NEVER_CALL": "More numbers never called, on top of the built-in crisis lines and helplines.",
    "DIAL_COUNTRIES": "Regions calls may go to (US,CA); * for all; default: CALLAGENT_DEFAULT_REGION only.",
    "DIAL_QUIET_HOURS": "No calls in this window of the callee's local time (21:00-08:00); off disables.",
    "DIAL_MAX_CONCURRENT": "Calls live at once.",
    "DIAL_MAX_PER_NUMBER_PER_DAY": "Calls to one number in any 24 hours.",
    "DIAL_MAX_PER_HOUR": "Calls in any 60 minutes.",
    "DIAL_CONFIRM": "Which calls need a person's confirmation: never (the client's tool approval is the "
    "human step), unlisted (numbers not on DIAL_ALLOW), always.",
    "DIAL_CONFIRM_TTL_S": "Seconds a confirmation token stays valid.",
    "DIAL_CONFIRM_BY": "Who confirms: client (MCP elicitation or a confirmation token) or operator (the "
    "console's approval queue).",
    "DIAL_APPROVAL_TTL_S": "Seconds a call waits for the operator's approval before it ends expired.",
    "DIAL_REQUIRE_REASONING": "make_phone_call must say why the call is made (reasoning).",
    "DIAL_ALLOW_EXTENSIONS": "Accept numbers with an extension, keyed in once answered.",
    "CALLAGENT_TRANSFER_NUMBERS": "The only numbers a call may be handed to (comma-separated); empty: never.",
    "CALLAGENT_RECORDING": "Call recording: off (record=true is refused), on_request, always.",
    "CALLAGENT_MAX_TOOL_ACTIONS": "How many side-effecting tool calls (a booking, a message) one call may make "
    "through the operator's MCP servers (callagent.toml [tools]).",
    "CALLAGENT_PROFILES_FILE": "The calling profiles and tenants file (TOML). Default: callagent.toml next to the "
    "settings file, if there is one; without it, one profile made of these settings.",
    "CALLAGENT_RECORDINGS_DIR": "Where recordings are kept; server and worker must see the same folder. "
    "Default: recordings/ next to the SQLite call store.",
    "CALLAGENT_RECORDING_RETENTION_DAYS": "Recordings older than this many days are deleted.",
    "CALLAGENT_MAX_GOAL_CHARS": "Longest goal a client may give, in characters.",
    "CALLAGENT_MAX_CONTEXT_CHARS": "Longest context a client may give, in characters.",
    "CALLAGENT_MAX_GREETING_CHARS": "Longest greeting a client may give, in characters.",
    "CALLAGENT_ENV_FILE": "A settings file (KEY=value lines) read below the environment and above "
    "~/.config/callagent/.env.",
}

Format = Literal["string", "number", "boolean", "filepath"]


class RegistryError(Exception):
    """The registry entry cannot be written from the project's metadata; the message says why."""


@dataclass(frozen=True)
class EnvVar:
    """One environment variable the MCP server reads."""

    name: str
    field: str | None  # the Settings field, None for a variable read outside Settings
    description: str
    secret: bool
    required: bool
    format: Format = "string"
    default: str | None = None
    choices: tuple[str, ...] = ()

    def registry_entry(self) -> dict[str, Any]:
        """The server.json KeyValueInput."""
        entry: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.required:
            entry["isRequired"] = True
        if self.secret:
            entry["isSecret"] = True
        if self.format != "string":
            entry["format"] = self.format
        if self.default is not None:
            entry["default"] = self.default
        if self.choices:
            entry["choices"] = list(self.choices)
        return entry


def project_metadata() -> dict[str, Any]:
    """pyproject.toml's [project] table (name, version, description, …)."""
    try:
        text = PYPROJECT.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RegistryError(f"{PYPROJECT} not found: run this from a callagent checkout") from None
    project: dict[str, Any] = tomllib.loads(text)["project"]
    return project


def environment_variables() -> list[EnvVar]:
    """Every environment variable the MCP server reads, in the order Settings declares them."""
    defaults = Settings.model_construct()  # the defaults, whatever this machine's environment says
    required = set(missing_livekit_settings(defaults))
    out: list[EnvVar] = []
    for field_name, info in Settings.model_fields.items():
        if field_name in NOT_READ_BY_THE_SERVER:
            continue
        env = info.validation_alias
        if not isinstance(env, str):
            raise RegistryError(f"Settings.{field_name} has no environment variable (validation_alias)")
        kind, choices, secret_type = _kind(info.annotation)
        default = None if info.default_factory is not None else _show_default(field_name, info.default)
        out.append(
            EnvVar(
                name=env,
                field=field_name,
                description=_description(env),
                secret=secret_type or env in _ALSO_SECRET or env.endswith(_SECRET_SUFFIXES),
                required=env in required,
                format=kind,
                default=default,
                choices=choices,
            )
        )
    env_file_var = getattr(settings_module, "ENV_FILE_VAR", None)  # --env-file, read before Settings
    if isinstance(env_file_var, str):
        out.append(
            EnvVar(env_file_var, None, _description(env_file_var), secret=False, required=False, format="filepath")
        )
    return out


def server_json() -> dict[str, Any]:
    """The registry entry, as server.json holds it."""
    project = project_metadata()
    description = str(project["description"])
    if len(description) > 100:  # the registry's limit
        raise RegistryError(f"pyproject's description is {len(description)} characters; the registry takes 100")
    return {
        "$schema": SCHEMA_URL,
        "name": SERVER_NAME,
        "title": TITLE,
        "description": description,
        "version": str(project["version"]),
        "packages": [
            {
                "registryType": "pypi",
                "identifier": str(project["name"]),
                "version": str(project["version"]),
                "runtimeHint": "uvx",
                "transport": {"type": "stdio"},
                "packageArguments": [
                    {
                        "type": "positional",
                        "value": MCP_COMMAND,
                        "description": "The operator CLI's command that serves MCP on stdio.",
                    }
                ],
                "environmentVariables": [var.registry_entry() for var in environment_variables()],
            }
        ],
    }


def render(data: dict[str, Any]) -> str:
    """server.json's text: two-space indents, UTF-8, one newline at the end."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m callagent.registry", description="Write server.json, callagent's MCP registry entry."
    )
    parser.add_argument("--check", action="store_true", help="only check that server.json is up to date")
    parser.add_argument("-o", "--output", type=Path, default=SERVER_JSON, help=f"default: {SERVER_JSON}")
    args = parser.parse_args(argv)
    try:
        text = render(server_json())
    except RegistryError as exc:
        print(f"callagent.registry: {exc}", file=sys.stderr)
        return 2
    if args.check:
        try:
            current = args.output.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = ""
        if current != text:
            print(f"{args.output} is out of date: run `uv run python -m callagent.registry`", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _description(env: str) -> str:
    try:
        return DESCRIPTIONS[env]
    except KeyError:
        raise RegistryError(
            f"{env} has no description for the registry entry: add one to DESCRIPTIONS in callagent/registry.py "
            "(or, if only the worker or the console reads it, its field to NOT_READ_BY_THE_SERVER)"
        ) from None


def _kind(annotation: Any) -> tuple[Format, tuple[str, ...], bool]:
    """A field's input format, its choices (a Literal's values) and whether it is a SecretStr."""
    args = get_args(annotation) if _is_union(annotation) else (annotation,)
    args = tuple(a for a in args if a is not type(None))
    secret = SecretStr in args
    if len(args) == 1 and get_origin(args[0]) is Literal:
        return "string", tuple(str(v) for v in get_args(args[0])), secret
    if args in ((bool,),):
        return "boolean", (), secret
    if args in ((int,), (float,)):
        return "number", (), secret
    if args == (Path,):
        return "filepath", (), secret
    return "string", (), secret


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (typing.Union, types.UnionType)


def _show_default(field_name: str, value: object) -> str | None:
    """A default as the registry writes it (a string), None when there is none to show."""
    if value is None or value == ():
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, time) for v in value):
        return "-".join(v.strftime("%H:%M") for v in value)
    raise RegistryError(
        f"Settings.{field_name}: cannot write its default {value!r} for the registry; teach _show_default"
    )


if __name__ == "__main__":
    sys.exit(main())
