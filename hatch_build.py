"""Build hook (hatchling): a built wheel carries no `devstack` command.

`devstack` (the local telephony bed) is a tool of the checkout: `uv sync` installs the project
editable, where `uv run devstack ...` finds the devstack package in the repo. A wheel ships the
callagent package only, so a `devstack` command in it would point at nothing; hatchling has no
setting for a script of the editable install only, hence this hook. tests/unit/test_wheel.py
checks the wheel's commands.
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

CHECKOUT_ONLY_SCRIPTS = ("devstack",)


class CheckoutOnlyScripts(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        scripts = self.metadata.core.scripts  # the dict the wheel's entry_points.txt is written from
        for name in CHECKOUT_ONLY_SCRIPTS:
            scripts.pop(name, None)
