"""The shape of callagent.toml: what each section may hold, checked by pydantic. Imported
only when there is a file to read (callagent.profiles.load), so a server without one does not
build these models at start."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from callagent.languages import LANGUAGES

__all__ = ["FileConfig", "PolicyOverride", "ProfileConfig", "TenantConfig", "ToolServerConfig"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicyOverride(_Strict):
    """`[profiles.NAME.policy]`: the deployment's dial policy, narrowed. Unset keys inherit."""

    countries: list[str] | None = None
    allow: list[str] | None = None
    deny: list[str] = Field(default_factory=list)
    never_call: list[str] = Field(default_factory=list)
    quiet_hours: str | None = None
    max_concurrent: int | None = Field(default=None, ge=1)
    max_per_number_per_day: int | None = Field(default=None, ge=1)
    max_per_hour: int | None = Field(default=None, ge=1)
    confirm: Literal["never", "unlisted", "always"] | None = None
    allow_extensions: bool | None = None
    max_duration_s: int | None = Field(default=None, ge=1)


class ProfileConfig(_Strict):
    """`[profiles.NAME]`; every key is optional and falls back to the settings."""

    description: str | None = Field(default=None, max_length=300)  # shown to clients
    caller_name: str | None = Field(default=None, min_length=1, max_length=200)
    instructions: str | None = Field(default=None, max_length=8000)  # the persona
    language: str = "en"
    voice: str | None = Field(default=None, min_length=1, max_length=200)
    tts_model: str | None = Field(default=None, min_length=1, max_length=200)
    stt_model: str | None = Field(default=None, min_length=1, max_length=200)
    llm_model: str | None = Field(default=None, min_length=1, max_length=200)
    sip_trunk: str | None = Field(default=None, min_length=1, max_length=200)
    caller_ids: list[str] = Field(default_factory=list)
    transfer_numbers: list[str] | None = None
    recording: Literal["off", "on_request", "always"] | None = None
    policy: PolicyOverride = Field(default_factory=PolicyOverride)
    phrases: dict[str, str] = Field(default_factory=dict)
    tools: list[str] = Field(default_factory=list)  # names of [tools.NAME] servers its calls may use

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        code = value.strip().lower()
        if code not in LANGUAGES:
            known = ", ".join(f"{c} ({n})" for c, n in LANGUAGES.items())
            raise ValueError(f"unknown language {value!r}; callagent speaks {known}")
        return code


class TenantConfig(_Strict):
    """`[tenants.NAME]`: a client of the HTTP transport. Only the token's SHA-256 is kept."""

    token_sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    profiles: list[str] = Field(min_length=1)
    max_concurrent: int | None = Field(default=None, ge=1)
    max_per_number_per_day: int | None = Field(default=None, ge=1)
    max_per_hour: int | None = Field(default=None, ge=1)


class ToolServerConfig(_Strict):
    """`[tools.NAME]`: an MCP server the agent may use during calls of the profiles naming it.
    Nothing is offered to the model unless listed in `allow`."""

    url: str | None = None
    command: list[str] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    allow: list[str] = Field(default_factory=list)
    side_effects: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class FileConfig(_Strict):
    profiles: dict[str, ProfileConfig] = Field(default_factory=dict)
    tenants: dict[str, TenantConfig] = Field(default_factory=dict)
    tools: dict[str, ToolServerConfig] = Field(default_factory=dict)
