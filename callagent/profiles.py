"""Calling profiles and tenants: the operator's `callagent.toml`.

A profile is how a call is made: on whose behalf, in which language and voice, over which
trunk, showing which caller ID, with which transfer targets and recording mode, under a dial
policy that may only be narrower than the deployment's (DIAL_* settings). A tenant is a client
of the HTTP transport with its own bearer token, bound to some profiles, seeing only its own
calls. Without the file there is one profile, `default`, made of the settings, and one tenant,
the operator: nothing changes for an existing install.

The file is read and checked once at start; every error names the file, the profile or tenant,
and the key. Loading is the only I/O here.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from callagent.calls import DEFAULT_PROFILE, NAME_PATTERN, OPERATOR, CallRequest, ToolServer
from callagent.languages import LANGUAGES
from callagent.numbers import mask
from callagent.policy import DialPolicy, Quota, VolumeLimits
from callagent.rules import Refusal, Rule
from callagent.settings import ENV_FILE_VAR, PROJECT_DIR, Settings, env_files, user_env_file

if TYPE_CHECKING:
    from callagent.profiles_schema import FileConfig, PolicyOverride, ProfileConfig, TenantConfig, ToolServerConfig

__all__ = [
    "FILE_NAME",
    "OPERATOR",
    "PROFILES_FILE_VAR",
    "TENANT_SCOPE_KEY",
    "Profile",
    "Profiles",
    "ProfilesProblem",
    "Tenant",
    "hash_token",
    "load",
    "profiles_file",
]

FILE_NAME = "callagent.toml"

PROFILES_FILE_VAR = "CALLAGENT_PROFILES_FILE"
# The HTTP transport puts the tenant whose bearer token it checked in the request's ASGI scope
# under this key; the MCP tools read it from there (absent: the operator).
TENANT_SCOPE_KEY = "callagent.tenant"
_CONFIRM_ORDER = ("never", "unlisted", "always")
_NAME = re.compile(NAME_PATTERN)


class ProfilesProblem(Exception):
    """callagent.toml cannot be used; the message names the file, the section and the key."""


# -- what the rest of callagent uses --------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """A profile, resolved against the settings: its policy is ready to check calls."""

    name: str
    caller_name: str
    language: str
    policy: DialPolicy
    caller_ids: tuple[str, ...] = ()
    description: str | None = None
    instructions: str | None = None
    voice: str | None = None
    tts_model: str | None = None
    stt_model: str | None = None
    llm_model: str | None = None
    sip_trunk: str | None = None
    phrases: dict[str, str] = field(default_factory=dict)
    tools: tuple[ToolServer, ...] = ()  # the MCP servers its calls may use
    max_tool_actions: int = 2
    section: str = ""  # where it is set: "callagent.toml [profiles.NAME]"; "" for the settings' default

    def caller_id(self, raw: str | None) -> str | Refusal | None:
        """The caller ID a call shows: None (the trunk's own), one of this profile's
        caller_ids, or the refusal of any other number. Checked before anything is dialed."""
        if raw is None:
            return None
        target = self.policy.parse_number(raw)
        number = target.e164 if not isinstance(target, Refusal) else None
        if number is not None and number in self.caller_ids:
            return number
        where = f"{self.section or f'{FILE_NAME} [profiles.{self.name}]'} caller_ids"
        if not self.caller_ids:
            why = (
                f"profile {self.name!r} has no caller IDs; the call shows the trunk's own number (leave caller_id out)"
            )
        else:
            shown = ", ".join(mask(n) for n in self.caller_ids)
            why = f"caller_id {mask(number or raw)} is not one of profile {self.name!r}'s numbers ({shown})"
        return Refusal(Rule.caller_id, why, where)

    def apply(self, request: CallRequest) -> CallRequest:
        """`request` with what this profile adds for the worker: voice, persona, phrases, trunk."""
        return request.model_copy(
            update={
                "profile": self.name,
                "language": self.language,
                "instructions": self.instructions,
                "tts_voice": self.voice,
                "tts_model": self.tts_model,
                "stt_model": self.stt_model,
                "llm_model": self.llm_model,
                "phrases": dict(self.phrases),
                "sip_trunk_id": self.sip_trunk,
                "tools": list(self.tools),
                "max_tool_actions": self.max_tool_actions,
            }
        )

    def listing(self) -> dict[str, Any]:
        """What a client may know of it (dial_policy): no trunk, no persona text, no secrets."""
        countries = self.policy.allowed_countries
        return {
            "name": self.name,
            "description": self.description,
            "caller_name": self.caller_name,
            "language": self.language,
            "language_name": LANGUAGES[self.language],
            "countries": list(countries),
            # The operator's own numbers, shown whole: the client picks one as caller_id.
            "caller_ids": list(self.caller_ids),
            "transfer_targets": [mask(n) for n in self.policy.transfer_numbers],
            "recording": self.policy.recording,
            "quiet_hours": None
            if self.policy.quiet_hours is None
            else f"{self.policy.quiet_hours[0]:%H:%M}-{self.policy.quiet_hours[1]:%H:%M}",
            # What the agent can look up or do during the call: servers and tool names only.
            "tools": {t.name: list(t.allow) for t in self.tools},
            "max_concurrent": min(
                [self.policy.limits.max_concurrent]
                + [q.limits.max_concurrent for q in self.policy.quotas if q.scope == "profile"]
            ),
        }


@dataclass(frozen=True)
class Tenant:
    name: str
    token_sha256: str
    profiles: tuple[str, ...]
    limits: VolumeLimits | None = None  # its own, on its calls only


@dataclass(frozen=True)
class Profiles:
    """Every profile and tenant of the deployment."""

    profiles: dict[str, Profile]
    tenants: dict[str, Tenant] = field(default_factory=dict)
    path: Path | None = None  # the file they came from; None: the settings alone

    @property
    def default(self) -> Profile:
        return self.profiles[DEFAULT_PROFILE]

    def usable_by(self, tenant: str | None) -> list[Profile]:
        """The profiles `tenant`'s clients may call with (None: the operator, every one)."""
        if tenant is None:
            return list(self.profiles.values())
        return [self.profiles[name] for name in self.tenants[tenant].profiles]

    def resolve(self, name: str | None, tenant: str | None) -> Profile | Refusal:
        """The profile a call is made under: `name`, or the caller's default one (`default`,
        or a tenant's first); a refusal for an unknown one or one the tenant may not use."""
        usable = self.usable_by(tenant)
        if name is None:
            names = [p.name for p in usable]
            return self.default if DEFAULT_PROFILE in names else usable[0]
        for profile in usable:
            if profile.name == name:
                return profile
        shown = ", ".join(p.name for p in usable)
        return Refusal(
            Rule.profile,
            f"there is no profile {name[:40]!r} for this client; it may use: {shown} (dial_policy shows them)",
        )

    def policy_for(self, profile: Profile, tenant: str | None) -> DialPolicy:
        """The profile's policy, plus the tenant's own limits when a tenant calls."""
        limits = self.tenants[tenant].limits if tenant is not None else None
        if limits is None:
            return profile.policy
        quota = Quota("tenant", limits, f"{FILE_NAME} [tenants.{tenant}]")
        return replace(profile.policy, quotas=(*profile.policy.quotas, quota))

    def tenant_for_token(self, token: str) -> Tenant | None:
        """The tenant whose token this is; compared in constant time, every tenant checked."""
        digest = hash_token(token)
        found = None
        for tenant in self.tenants.values():
            if hmac.compare_digest(digest, tenant.token_sha256):
                found = tenant
        return found


def hash_token(token: str) -> str:
    """What `[tenants.NAME] token_sha256` holds for a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


# -- finding and loading the file ---------------------------------------------------------------


def profiles_file(settings: Settings) -> Path | None:
    """The profiles file: CALLAGENT_PROFILES_FILE (which must exist), else `callagent.toml`
    next to the settings file that is read first (--env-file's folder, ~/.config/callagent,
    the checkout), else none."""
    if settings.profiles_file is not None:
        path = settings.profiles_file.expanduser()
        if not path.is_file():
            raise ProfilesProblem(f"the profiles file {path} ({PROFILES_FILE_VAR}) does not exist")
        return path
    folders: list[Path] = []
    if os.environ.get(ENV_FILE_VAR, "").strip():
        folders.append(env_files(check=False)[0].parent)
    folders.append(user_env_file().parent)
    if (PROJECT_DIR / "pyproject.toml").is_file() and (PROJECT_DIR / "calling_agent.py").is_file():
        folders.append(PROJECT_DIR)
    for folder in folders:
        candidate = folder / FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def load(settings: Settings) -> Profiles:
    """The deployment's profiles and tenants. Raises ProfilesProblem naming the file, the
    section and the key of the first thing wrong (a widening policy override among them)."""
    path = profiles_file(settings)
    if path is None:
        return Profiles({DEFAULT_PROFILE: _from_settings(settings)})
    import tomllib

    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ProfilesProblem(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ProfilesProblem(f"{path}: cannot be read: {exc.strerror}") from None
    from callagent.profiles_schema import FileConfig

    try:
        config = FileConfig.model_validate(raw)
    except ValidationError as exc:
        raise ProfilesProblem(f"{path}: {_first_error(exc)}") from None
    return _build(settings, config, path)


def _first_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:3]:
        loc = [str(part) for part in error["loc"]]
        section = ".".join(loc[:2]) if len(loc) >= 2 else ".".join(loc)
        key = ".".join(loc[2:])
        msg = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            msg = "not a key callagent knows (a typo?)"
        where = f"[{section}]" + (f" {key}" if key else "")
        problems.append(f"{where}: {msg}")
    return "; ".join(problems)


def _build(settings: Settings, config: FileConfig, path: Path) -> Profiles:
    servers = {name: _tool_server(name, cfg, f"{path} [tools.{name}]") for name, cfg in config.tools.items()}
    profiles = {DEFAULT_PROFILE: _from_settings(settings)}
    for name, cfg in config.profiles.items():
        section = f"{path} [profiles.{name}]"
        if not _NAME.fullmatch(name):
            raise ProfilesProblem(f"{section}: a profile name is 1-32 lowercase letters, digits, '-' or '_'")
        unknown = [t for t in cfg.tools if t not in servers]
        if unknown:
            raise ProfilesProblem(f"{section} tools: no [tools.{unknown[0]}] section in the file")
        profile = _profile(settings, name, cfg, section)
        profiles[name] = replace(profile, tools=tuple(servers[t] for t in dict.fromkeys(cfg.tools)))
    tenants: dict[str, Tenant] = {}
    seen: dict[str, str] = {}
    for name, tcfg in config.tenants.items():
        section = f"{path} [tenants.{name}]"
        if not _NAME.fullmatch(name):
            raise ProfilesProblem(f"{section}: a tenant name is 1-32 lowercase letters, digits, '-' or '_'")
        if name == OPERATOR:
            raise ProfilesProblem(
                f"{section}: {OPERATOR!r} stands for the operator's own calls; name the tenant otherwise"
            )
        unknown = [p for p in tcfg.profiles if p not in profiles]
        if unknown:
            raise ProfilesProblem(f"{section} profiles: no profile named {', '.join(map(repr, unknown))}")
        digest = tcfg.token_sha256.lower()
        if digest in seen:
            raise ProfilesProblem(f"{section} token_sha256: the same token as tenant {seen[digest]!r}")
        seen[digest] = name
        limits = None
        if any(v is not None for v in (tcfg.max_concurrent, tcfg.max_per_number_per_day, tcfg.max_per_hour)):
            limits = _narrower_limits(settings, tcfg, section)
        tenants[name] = Tenant(name, digest, tuple(dict.fromkeys(tcfg.profiles)), limits)
    return Profiles(profiles, tenants, path)


def _from_settings(settings: Settings) -> Profile:
    return Profile(
        name=DEFAULT_PROFILE,
        caller_name=settings.caller_name,
        language="en",
        policy=DialPolicy.from_settings(settings),
        max_tool_actions=settings.max_tool_actions,
    )


# A header whose value is a secret must come from the environment: the request travels through
# LiveKit as dispatch metadata, and a literal would be stored there.
_SECRET_HEADER = re.compile(r"authorization|token|key|secret|password|cookie", re.IGNORECASE)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _tool_server(name: str, cfg: ToolServerConfig, section: str) -> ToolServer:
    if not _NAME.fullmatch(name):
        raise ProfilesProblem(f"{section}: a tool server name is 1-32 lowercase letters, digits, '-' or '_'")
    if (cfg.url is None) == (cfg.command is None):
        raise ProfilesProblem(f"{section}: give either url (streamable HTTP) or command (stdio), not both or neither")
    if cfg.url is not None and not re.match(r"^https?://[^\s/]+", cfg.url):
        raise ProfilesProblem(f"{section} url: {cfg.url!r} is not an http:// or https:// URL")
    if cfg.command is not None and not cfg.command:
        raise ProfilesProblem(f'{section} command: give the program and its arguments, e.g. ["uvx", "my-server"]')
    for header, value in cfg.headers.items():
        if _SECRET_HEADER.search(header) and not _ENV_REF.search(value):
            raise ProfilesProblem(
                f'{section} headers.{header}: a secret must come from the environment, e.g. "Bearer ${{CALENDAR_TOKEN}}"; '
                "the file and the call's metadata must not hold it"
            )
    if not cfg.allow:
        raise ProfilesProblem(f"{section} allow: list the tools the agent may use; nothing is allowed by default")
    stray = [t for t in cfg.side_effects if t not in cfg.allow]
    if stray:
        raise ProfilesProblem(f"{section} side_effects: {stray[0]!r} is not in allow")
    return ToolServer(
        name=name,
        url=cfg.url,
        command=cfg.command,
        headers=dict(cfg.headers),
        allow=list(dict.fromkeys(cfg.allow)),
        side_effects=list(dict.fromkeys(cfg.side_effects)),
        timeout_s=cfg.timeout_s,
    )


# The profile keys that override a setting, and the setting.
_SETTING_OF = {
    "countries": "dial_countries",
    "allow": "dial_allow",
    "quiet_hours": "dial_quiet_hours",
    "confirm": "dial_confirm",
    "allow_extensions": "dial_allow_extensions",
}
_RULE_OF = {
    "countries": Rule.country,
    "allow": Rule.allow_list,
    "deny": Rule.deny_list,
    "quiet_hours": Rule.quiet_hours,
    "confirm": Rule.confirmation,
    "allow_extensions": Rule.extension,
    "never_call": Rule.sensitive_number,
    "max_duration_s": Rule.max_duration,
    "transfer_numbers": Rule.transfer_target,
    "recording": Rule.recording,
}


def _profile(settings: Settings, name: str, cfg: ProfileConfig, section: str) -> Profile:
    from callagent.profiles_schema import PolicyOverride

    over = cfg.policy
    update: dict[str, Any] = {key: getattr(over, key) for key in _SETTING_OF if getattr(over, key) is not None}
    update = {_SETTING_OF[key]: value for key, value in update.items()}
    if over.deny:
        update["dial_deny"] = [*settings.dial_deny, *over.deny]
    if over.never_call:
        update["dial_never_call"] = [*settings.dial_never_call, *over.never_call]
    if cfg.transfer_numbers is not None:
        update["transfer_numbers"] = cfg.transfer_numbers
    if cfg.recording is not None:
        update["recording"] = cfg.recording
    if over.max_duration_s is not None:
        # The profile's longest call: its default and its cap, within the deployment's cap.
        if over.max_duration_s > settings.max_duration_cap_s:
            raise ProfilesProblem(
                f"{section.replace(']', '.policy]')} max_duration_s: {over.max_duration_s} is above the deployment's "
                f"cap (CALLAGENT_MAX_DURATION_CAP_S={settings.max_duration_cap_s}); a profile may only narrow the "
                "dial policy"
            )
        update["max_duration_s"] = min(settings.max_duration_s, over.max_duration_s)
        update["max_duration_cap_s"] = over.max_duration_s
    # The settings' own validators read the values, so a profile's lists and windows mean
    # exactly what the same text means in a DIAL_* variable.
    try:
        narrowed = Settings.model_validate({**settings.model_dump(), **update})
    except ValidationError as exc:
        key = _key_of(exc)
        raise ProfilesProblem(f"{section}{key}: {_message_of(exc)}") from None
    _check_narrower(settings, narrowed, over, f"{section.replace(']', '.policy]')}")

    callers: list[str] = []
    for raw in cfg.caller_ids:
        target = DialPolicy.from_settings(settings).parse_number(raw)
        if isinstance(target, Refusal) or target.extension is not None:
            reason = target.message if isinstance(target, Refusal) else "an extension is not a caller ID"
            raise ProfilesProblem(f"{section} caller_ids: {raw!r} is not a number a call can show ({reason})")
        callers.append(target.e164)

    from callagent import disclosure, languages

    problem = languages.phrases_problem(cfg.language, cfg.phrases, caller_name=cfg.caller_name or settings.caller_name)
    if problem is not None:
        raise ProfilesProblem(f"{section.replace(']', '.phrases]')}: {problem}")
    # The persona is the operator's, but the disclosure rules hold for it as for a client's
    # context: it may give the agent a name, never make it a person.
    refusal = disclosure.check("context", cfg.instructions) if cfg.instructions else None
    if refusal is not None:
        raise ProfilesProblem(f"{section} instructions: {refusal.message}")

    policy = DialPolicy.from_settings(narrowed)
    quotas: tuple[Quota, ...] = ()
    if any(v is not None for v in (over.max_concurrent, over.max_per_number_per_day, over.max_per_hour)):
        limits = _narrower_limits(settings, over, section.replace("]", ".policy]"))
        quotas = (Quota("profile", limits, _short(section) + ".policy]"),)
    short = _short(section)
    own = {
        "deny": tuple(e for e in policy.deny if e not in settings.dial_deny),
        "never_call": tuple(e for e in policy.never_call if e not in settings.dial_never_call),
    }
    settings_of = tuple(
        (
            rule,
            f"{short}.policy] {key}" if key in PolicyOverride.model_fields else f"{short}] {key}",
            own.get(key, ()),
        )
        for key, rule in _RULE_OF.items()
        if getattr(over if key in PolicyOverride.model_fields else cfg, key) not in (None, [])
    )
    policy = replace(policy, quotas=quotas, settings_of=settings_of)
    return Profile(
        name=name,
        max_tool_actions=settings.max_tool_actions,
        caller_name=cfg.caller_name or settings.caller_name,
        language=cfg.language,
        policy=policy,
        caller_ids=tuple(dict.fromkeys(callers)),
        description=cfg.description,
        instructions=cfg.instructions,
        voice=cfg.voice,
        tts_model=cfg.tts_model,
        stt_model=cfg.stt_model,
        llm_model=cfg.llm_model,
        sip_trunk=cfg.sip_trunk,
        phrases=dict(cfg.phrases),
        section=_short(section) + "]",
    )


def _short(section: str) -> str:
    """`callagent.toml [profiles.x` from `/path/callagent.toml [profiles.x]` (no path, no `]`)."""
    file, _, rest = section.partition(" ")
    return f"{Path(file).name} {rest.rstrip(']')}"


_KEY_OF_SETTING = {setting: key for key, setting in _SETTING_OF.items()} | {
    "dial_deny": "policy.deny",
    "dial_never_call": "policy.never_call",
    "transfer_numbers": "transfer_numbers",
    "recording": "recording",
}


def _key_of(exc: ValidationError) -> str:
    loc = exc.errors()[0]["loc"]
    field_name = str(loc[0]) if loc else ""
    key = _KEY_OF_SETTING.get(field_name)
    if key is None:
        return ""
    return f" {key if '.' in key or key in ('transfer_numbers', 'recording') else 'policy.' + key}"


def _message_of(exc: ValidationError) -> str:
    return exc.errors()[0]["msg"].removeprefix("Value error, ")


def _narrower_limits(settings: Settings, over: PolicyOverride | TenantConfig, section: str) -> VolumeLimits:
    pairs = {
        "max_concurrent": ("dial_max_concurrent", "DIAL_MAX_CONCURRENT"),
        "max_per_number_per_day": ("dial_max_per_number_per_day", "DIAL_MAX_PER_NUMBER_PER_DAY"),
        "max_per_hour": ("dial_max_per_hour", "DIAL_MAX_PER_HOUR"),
    }
    values: dict[str, int] = {}
    for key, (setting, env) in pairs.items():
        mine, theirs = getattr(over, key), getattr(settings, setting)
        if mine is not None and mine > theirs:
            raise ProfilesProblem(
                f"{section} {key}: {mine} is more than the deployment allows ({env}={theirs}); "
                "a profile or tenant may only lower a limit"
            )
        values[key] = mine if mine is not None else theirs
    return VolumeLimits(**values)


def _check_narrower(settings: Settings, narrowed: Settings, over: PolicyOverride, section: str) -> None:
    """Refuse any override that would let a call through that the deployment refuses."""

    def widen(key: str, why: str) -> ProfilesProblem:
        return ProfilesProblem(f"{section} {key}: {why}; a profile may only narrow the dial policy")

    mine, theirs = DialPolicy.from_settings(narrowed), DialPolicy.from_settings(settings)
    if over.countries is not None:
        have, want = set(theirs.allowed_countries), set(mine.allowed_countries)
        if "*" in want and "*" not in have:
            raise widen("countries", f"'*' allows every country, the deployment only {', '.join(sorted(have))}")
        extra = sorted(want - have - {"*"} if "*" not in have else (want & {"001"}) - have)
        if extra:
            raise widen("countries", f"{', '.join(extra)} is not among the deployment's countries (DIAL_COUNTRIES)")
    if over.allow is not None:
        outside = [e for e in mine.allow if theirs.allow and not _covered(e, theirs.allow)]
        if outside:
            raise widen("allow", f"{', '.join(map(_show, outside))} is not on the deployment's allow list (DIAL_ALLOW)")
        if not theirs.allow and theirs.confirm == "unlisted":
            raise widen("allow", "with DIAL_CONFIRM=unlisted an allow list spares calls the confirmation")
    if over.quiet_hours is not None and not _covers(mine.quiet_hours, theirs.quiet_hours):
        shown = "off" if theirs.quiet_hours is None else f"{theirs.quiet_hours[0]:%H:%M}-{theirs.quiet_hours[1]:%H:%M}"
        raise widen("quiet_hours", f"it must include the deployment's quiet hours ({shown}, DIAL_QUIET_HOURS)")
    if over.confirm is not None and _CONFIRM_ORDER.index(mine.confirm) < _CONFIRM_ORDER.index(theirs.confirm):
        raise widen("confirm", f"{mine.confirm!r} asks less often than the deployment's DIAL_CONFIRM={theirs.confirm}")
    if over.allow_extensions and not theirs.allow_extensions:
        raise widen("allow_extensions", "the deployment does not dial extensions (DIAL_ALLOW_EXTENSIONS)")
    if mine.confirm == "unlisted" and theirs.confirm == "never" and mine.allow:
        # Under "never" a number off the allow list is refused; under "unlisted" it is asked about.
        raise widen(
            "confirm",
            "'unlisted' would let numbers off the allow list be called once confirmed, which DIAL_CONFIRM=never "
            "with DIAL_ALLOW refuses",
        )


def _show(entry: str) -> str:
    return entry if entry.endswith("*") else mask(entry)


def _covered(entry: str, patterns: tuple[str, ...]) -> bool:
    """Whether every number `entry` (a number or a prefix) stands for is matched by `patterns`."""
    stem = entry[:-1] if entry.endswith("*") else entry
    for p in patterns:
        if p.endswith("*") and stem.startswith(p[:-1]):
            return True
        if p == entry:
            return True
    return False


def _minutes(window: tuple[time, time] | None) -> set[int]:
    if window is None:
        return set()
    start, end = (t.hour * 60 + t.minute for t in window)
    span = range(start, end) if start < end else [*range(start, 24 * 60), *range(end)]
    return set(span)


def _covers(mine: tuple[time, time] | None, theirs: tuple[time, time] | None) -> bool:
    """Whether quiet hours `mine` include every minute of `theirs` (None: no quiet hours)."""
    return _minutes(theirs) <= _minutes(mine)
