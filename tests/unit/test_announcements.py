"""Carrier announcements told from people."""

from __future__ import annotations

import pytest

from callagent.agent.announcements import not_in_service


@pytest.mark.parametrize(
    "heard",
    [
        "We're sorry, the number you have dialed is not in service. Please check the number and dial again.",
        "The number you have called is no longer in service.",
        "We're sorry, your call cannot be completed as dialed.",
        "The number you have reached has been disconnected.",
        "this is not a working number",
        "El número que usted ha marcado no está en servicio.",
        "El número marcado no existe.",
        "  the number you dialed\nis   not in service ",
    ],
)
def test_announcements_are_recognised(heard: str) -> None:
    assert not_in_service(heard)


@pytest.mark.parametrize(
    "heard",
    [
        "Hello, this is Sam speaking. What is this about?",
        "Sorry, he is not in the office right now.",
        "Our service desk is closed, please call back tomorrow.",
        "The number you have dialed is correct, how can I help?",
        "Yes, the appointment is still in service of the clinic's schedule.",
        "I'm not in the mood for this.",
        "Please hold while we connect your call.",
    ],
)
def test_people_are_not_announcements(heard: str) -> None:
    assert not not_in_service(heard)
