"""Unit tests read settings only from what each test sets: not from the user's config folder
(~/.config/callagent/.env) nor from an outer CALLAGENT_ENV_FILE (`--env-file`)."""

from __future__ import annotations

import pytest

from callagent.settings import ENV_FILE_VAR


@pytest.fixture(autouse=True)
def no_user_settings(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.getbasetemp() / "no-user-config"))
    # Set (empty: no file) rather than deleted, so a test's --env-file is undone after it.
    monkeypatch.setenv(ENV_FILE_VAR, "")
