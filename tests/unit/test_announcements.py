"""Carrier announcements told from people."""

from __future__ import annotations

import pytest

from callagent.agent.announcements import not_in_service
from callagent.agent.hold import is_hold_announcement


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


@pytest.mark.parametrize(
    "heard",
    [
        "Thank you for calling Harbor Dental. All our agents are busy. Please hold.",
        "Your call is important to us. Please continue to hold.",
        "Please stay on the line, the next available representative will be with you shortly.",
        "You are caller number three in the queue.",
        "Todos nuestros agentes están ocupados. Por favor, espere.",
    ],
)
def test_hold_announcements_are_recognised(heard: str) -> None:
    assert is_hold_announcement(heard)


@pytest.mark.parametrize(
    "heard",
    [
        "Thanks for holding, this is Casey at the front desk. How can I help you?",
        "Hello, this is Sam speaking. What is this about?",
        "Can you hold on a second while I check the calendar?",
        "Yes, tomorrow at ten works.",
    ],
)
def test_people_are_not_hold_announcements(heard: str) -> None:
    assert not is_hold_announcement(heard)
