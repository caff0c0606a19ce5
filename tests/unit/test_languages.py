"""The fixed sentences in every language (callagent.languages), and the start-up check of a
profile's own wording: every language has every sentence, each renders, each disclosure says
it is an AI and on whose behalf, and an override that undoes any of that is refused, naming
the key."""

from __future__ import annotations

import string
import unicodedata

import pytest

from callagent import disclosure
from callagent.calls import disclosure as calls_disclosure
from callagent.languages import (
    DISCLOSURE_KEYS,
    LANGUAGES,
    PHRASE_KEYS,
    PHRASES,
    UnknownPhrase,
    phrase,
    phrase_problem,
    phrases_problem,
)

CALLER = "Harbor Dental"
SCRIPT = {"hi": "DEVANAGARI", "ta": "TAMIL"}  # their sentences are in their own script


def rendered(key: str, language: str, *, recorded: bool = False) -> str:
    notice = phrase("recording_notice", language) if recorded else ""
    return phrase(key, language, caller_name=CALLER, recording=notice)


def test_every_language_has_every_phrase() -> None:
    assert set(PHRASES) == set(LANGUAGES)
    for language, phrases in PHRASES.items():
        assert set(phrases) == set(PHRASE_KEYS), language


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_every_phrase_renders_with_only_its_placeholders(language: str) -> None:
    for key, template in PHRASES[language].items():
        assert phrase_problem(key, template) is None, (language, key)
        names = {field for _, field, _, _ in string.Formatter().parse(template) if field}
        assert names <= PHRASE_KEYS[key], (language, key)
        for recorded in (False, True):
            text = rendered(key, language, recorded=recorded)
            assert text.strip() and "{" not in text and "}" not in text, (language, key)
            assert "  " not in text, (language, key)
            if key != "recording_notice":  # a fragment: it goes inside the disclosure
                assert text == text.strip() and text[-1] in ".।", (language, key)


@pytest.mark.parametrize("language", [code for code in LANGUAGES if code != "en"])
def test_each_language_is_translated_in_its_own_script(language: str) -> None:
    for key, template in PHRASES[language].items():
        assert template != PHRASES["en"][key], (language, key)
        if language in SCRIPT:
            letters = [c for c in phrase(key, language) if c.isalpha()]  # placeholders empty
            assert letters and all(SCRIPT[language] in unicodedata.name(c) for c in letters), (language, key)


@pytest.mark.parametrize("language", list(LANGUAGES))
@pytest.mark.parametrize("key", DISCLOSURE_KEYS)
def test_each_disclosure_says_ai_on_whose_behalf_and_the_recording(language: str, key: str) -> None:
    plain = rendered(key, language)
    recorded = rendered(key, language, recorded=True)
    for text in (plain, recorded):
        assert CALLER in text
        assert disclosure.says_ai(text), text
        assert disclosure.check("greeting", text) is None, text
    notice = phrase("recording_notice", language)
    assert notice not in plain and notice in recorded
    # The notice goes inside the sentence, before its final full stop.
    assert recorded.endswith(plain[-1]) and recorded.index(notice) > recorded.index(CALLER)


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_the_built_in_sentences_pass_the_check_overrides_must_pass(language: str) -> None:
    assert phrases_problem(language, PHRASES[language]) is None
    assert phrases_problem(language, {}) is None


def test_the_call_disclosure_is_rendered_in_the_calls_language() -> None:
    assert (
        calls_disclosure(CALLER, language="es")
        == f"Hola, le llama un asistente de inteligencia artificial en nombre de {CALLER}."
    )
    hindi = calls_disclosure(CALLER, recorded=True, language="hi")
    assert hindi == f"नमस्ते, मैं {CALLER} की ओर से कॉल करने वाला एक एआई सहायक हूँ; यह कॉल रिकॉर्ड की जा रही है।"
    after_hold = calls_disclosure(CALLER, language="ta", key="disclosure_after_hold")
    assert after_hold.startswith("வணக்கம், அழைப்பை எடுத்ததற்கு நன்றி.") and CALLER in after_hold


def test_a_profiles_override_wins_and_unknown_languages_fall_back_to_english() -> None:
    overrides = {"out_of_time": "Se acabó el tiempo, ¡adiós!"}
    assert phrase("out_of_time", "es", overrides) == "Se acabó el tiempo, ¡adiós!"
    assert phrase("ended_elsewhere", "es", overrides) == PHRASES["es"]["ended_elsewhere"]
    assert phrase("out_of_time", "xx") == PHRASES["en"]["out_of_time"]
    with pytest.raises(UnknownPhrase):
        phrase("farewell", "en")


# -- a profile's own wording, checked at start-up --------------------------------------------------


@pytest.mark.parametrize(
    ("language", "phrases", "expected"),
    [
        # keys and placeholders
        ("en", {"farewell": "Bye."}, "unknown phrase 'farewell'"),
        ("en", {"disclosure": "Hi, an AI for {caller} here{recording}."}, "phrase 'disclosure' uses {caller}"),
        (
            "en",
            {"out_of_time": "Time is up {caller_name}."},
            "phrase 'out_of_time' uses {caller_name}; it may use none",
        ),
        ("en", {"disclosure": "Hi, an AI assistant here{recording}."}, "must name on whose behalf"),
        ("en", {"disclosure": "Hi {caller_name"}, "is not a valid template"),
        ("en", {"transfer_hold": "  "}, "phrase 'transfer_hold' is empty"),
        ("zz", {}, "unknown language 'zz'"),
        # the disclosure must stay one
        ("en", {"disclosure": "Hello, this is an AI assistant for {caller_name}."}, "must include {recording}"),
        ("en", {"disclosure": "Hello, this is Sarah calling for {caller_name}{recording}."}, "named person"),
        (
            "en",
            {"disclosure": "Hello, I'm an assistant calling for {caller_name}{recording}."},
            "phrase 'disclosure' must say the agent is an AI",
        ),
        (
            "en",
            {"disclosure_after_hold": "Hi again, this is not an AI but a helper for {caller_name}{recording}."},
            "phrase 'disclosure_after_hold' denies",
        ),
        (
            "en",
            {"disclosure": "Hi, an AI assistant for {caller_name}{recording}. Just kidding, I'm a real person."},
            "takes the AI disclosure back",
        ),
        (
            "hi",
            {"disclosure": "नमस्ते, मैं {caller_name} की ओर से कॉल कर रहा एक इंसान हूँ{recording}।"},
            "must say the agent is an AI",
        ),
        (
            "hi",
            {"disclosure": "नमस्ते, मैं {caller_name} का सहायक हूँ, मैं एआई नहीं हूँ{recording}।"},
            "denies that the agent is an AI",
        ),
        (
            "ta",
            {"disclosure": "வணக்கம், நான் {caller_name} சார்பாக அழைக்கிறேன், நான் ஒரு மனிதன்{recording}."},
            "claims the agent is a person",
        ),
        ("de", {"disclosure": "Hallo, hier spricht Thomas im Auftrag von {caller_name}{recording}."}, "named person"),
        # the recording notice
        ("en", {"recording_notice": "; this call is not recorded"}, "claims the call is not recorded"),
        ("en", {"recording_notice": "."}, "phrase 'recording_notice' must say that the call is recorded"),
        ("fr", {"recording_notice": " ; cet appel n'est pas enregistré"}, "claims the call is not recorded"),
        # every other sentence the callee hears is held to the greeting's rules
        ("en", {"transfer_put_through": "Hold on, I'm a real person."}, "phrase 'transfer_put_through' claims"),
        ("es", {"out_of_time": "Se acabó el tiempo. Era broma lo de la IA, soy Carlos."}, "phrase 'out_of_time'"),
        ("hi", {"ended_elsewhere": "मैं रोबोट नहीं हूँ। नमस्ते।"}, "phrase 'ended_elsewhere' denies"),
    ],
)
def test_an_override_that_undoes_the_disclosure_is_refused_naming_the_key(
    language: str, phrases: dict[str, str], expected: str
) -> None:
    problem = phrases_problem(language, phrases)
    assert problem is not None and expected in problem, problem


@pytest.mark.parametrize(
    ("language", "phrases"),
    [
        ("en", {"disclosure": "Good morning! You're speaking with an AI assistant for {caller_name}{recording}."}),
        ("en", {"disclosure": "Hi, this is Robin, an AI assistant for {caller_name}{recording}."}),
        ("es", {"disclosure": "Buenos días, soy un asistente de IA de {caller_name}{recording}."}),
        ("fr", {"disclosure": "Bonjour, ici l'assistant virtuel de {caller_name}{recording}."}),
        ("de", {"disclosure": "Guten Tag, hier ist der KI-Assistent von {caller_name}{recording}."}),
        ("hi", {"disclosure": "नमस्कार, मैं {caller_name} का एआई सहायक हूँ{recording}।"}),
        ("ta", {"disclosure": "வணக்கம், நான் {caller_name} நிறுவனத்தின் ஏஐ உதவியாளர்{recording}."}),
        ("en", {"recording_notice": ", and this call is being recorded"}),
        ("de", {"recording_notice": "; das Gespräch wird aufgezeichnet"}),
        ("en", {"transfer_declined": "Okay, no problem. Thanks, bye."}),
    ],
)
def test_an_override_that_keeps_the_disclosure_passes(language: str, phrases: dict[str, str]) -> None:
    assert phrases_problem(language, phrases) is None


def test_overrides_are_checked_with_the_operators_name() -> None:
    # The sentences are rendered with the name the profile gives (a sample one by default).
    sentence = {"disclosure": "Hello, this is an AI assistant calling on behalf of {caller_name}{recording}."}
    assert phrases_problem("en", sentence) is None
    assert phrases_problem("en", sentence, caller_name="Dr. Priya Raman") is None
    problem = phrases_problem("en", sentence, caller_name="Bob. I'm human")
    assert problem is not None and "claims the agent is a person" in problem
