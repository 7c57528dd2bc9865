"""Evasions are undone and findings still point at the original characters."""

from __future__ import annotations

import base64
from functools import cache

import pytest

from bastion.protect import ProtectionSettings, Scanner
from bastion.protect.textmap import normalize


@cache
def scanner() -> Scanner:
    return Scanner(ProtectionSettings(engine="python", ner={"mode": "off"}))


def spans(text: str) -> list[tuple[str, str]]:
    return [(f.type, text[f.start : f.end]) for f in scanner().scan(text)]


ZW = "\u200b"
B64_EMAIL = base64.b64encode(b"write to jane.doe@example.com").decode()
HEX_SSN = b"ssn 536-22-1234".hex()

EVASIONS = [
    (
        "fullwidth digits",
        "card ４１１１ １１１１ １１１１ １１１１",
        "CREDIT_CARD",
        "４１１１ １１１１ １１１１ １１１１",
    ),
    ("zero-width inside a number", f"ssn 536{ZW}-22-{ZW}1234", "US_SSN", f"536{ZW}-22-{ZW}1234"),
    ("zero-width inside an email", f"j{ZW}a{ZW}ne@exa{ZW}mple.com", "EMAIL_ADDRESS", f"j{ZW}a{ZW}ne@exa{ZW}mple.com"),
    ("bidi controls", "ip \u202e10.0.12.7\u202c ok", "IP_ADDRESS", "10.0.12.7"),
    ("cyrillic look-alikes", "mail јаnе@ехаmрlе.com", "EMAIL_ADDRESS", "јаnе@ехаmрlе.com"),
    ("greek look-alikes in a key", "key ΑKIAIOSFODNN7EXAMPLE", "SECRET", "ΑKIAIOSFODNN7EXAMPLE"),
    ("dots inside a card", "card 4111.1111.1111.1111", "CREDIT_CARD", "4111.1111.1111.1111"),
    ("spaces in an ssn", "SSN 536 22 1234", "US_SSN", "536 22 1234"),
    ("unicode dashes", "SSN 536\u201322\u20131234", "US_SSN", "536\u201322\u20131234"),
    (
        "non-breaking spaces",
        "card 4111\u00a01111\u00a01111\u00a01111",
        "CREDIT_CARD",
        "4111\u00a01111\u00a01111\u00a01111",
    ),
    ("spelled email", "reach me: jane at example dot com", "EMAIL_ADDRESS", "jane at example dot com"),
    ("bracketed email", "jane [at] example [dot] com", "EMAIL_ADDRESS", "jane [at] example [dot] com"),
    ("parenthesised email", "jane(at)example(dot)org", "EMAIL_ADDRESS", "jane(at)example(dot)org"),
    ("mixed email", "j.doe@mail dot example dot co dot uk", "EMAIL_ADDRESS", "j.doe@mail dot example dot co dot uk"),
    ("base64 payload", f"decode this: {B64_EMAIL} thanks", "EMAIL_ADDRESS", B64_EMAIL),
    ("hex payload", f"blob {HEX_SSN} end", "US_SSN", HEX_SSN),
    ("url-encoded email", "GET /?to=jane%40example.com&x=1", "EMAIL_ADDRESS", "jane%40example.com"),
    ("ligature and superscripts", "ssn ⁵³⁶-²²-¹²³⁴", "US_SSN", "⁵³⁶-²²-¹²³⁴"),
    ("spelled local part", "reach jane dot doe at example dot com today", "EMAIL_ADDRESS",
     "jane dot doe at example dot com"),
    ("bracketed symbols", "mail: jane.doe [@] example [.] com", "EMAIL_ADDRESS", "jane.doe [@] example [.] com"),
    ("shouted email", "JANE AT EXAMPLE DOT COM", "EMAIL_ADDRESS", "JANE AT EXAMPLE DOT COM"),
    ("spaced email", "a.kowalczyk @ firma . pl", "EMAIL_ADDRESS", "a.kowalczyk @ firma . pl"),
    ("spaced dashes in a card", "card 4111 - 1111 - 1111 - 1111", "CREDIT_CARD", "4111 - 1111 - 1111 - 1111"),
    ("double spaces in a card", "4111  1111  1111  1111", "CREDIT_CARD", "4111  1111  1111  1111"),
    ("spaced dashes in an ssn", "ssn 536 - 22 - 1234", "US_SSN", "536 - 22 - 1234"),
    ("base64 key", "here: QUtJQUlPU0ZPRE5ON0VYQU1QTEU=", "SECRET", "QUtJQUlPU0ZPRE5ON0VYQU1QTEU="),
    ("digits spelled as words", "ssn is five three six - two two - one two three four", "US_SSN",
     "five three six - two two - one two three four"),
    ("phone spelled as words", "call four one five, five five five, zero one three four", "PHONE_NUMBER",
     "four one five, five five five, zero one three four"),
    ("combining marks nearby", "Zoë's card 4111111111111111", "CREDIT_CARD", "4111111111111111"),
]


@pytest.mark.parametrize(("label", "text", "etype", "value"), EVASIONS, ids=[e[0] for e in EVASIONS])
def test_evasion_is_detected_at_original_offsets(label: str, text: str, etype: str, value: str) -> None:
    assert (etype, value) in spans(text)


@pytest.mark.parametrize("text", ["I looked at the example dot com site", "meet at noon", "look at this dot",
                                  "I have one or two or three apples, maybe four five six seven"])
def test_ordinary_words_are_not_spelled_emails(text: str) -> None:
    assert spans(text) == []


def test_offset_map_round_trips() -> None:
    original = f"a{ZW}ｂ\u0301c ﬁx"
    mapped = normalize(original)
    assert mapped.text.startswith("ab")
    i = mapped.text.index("fi")
    assert mapped.to_original(i, i + 2) == (original.index("ﬁ"), original.index("ﬁ") + 1)


def test_all_cyrillic_words_are_not_folded() -> None:
    # Real Russian text must stay as it is: only mixed-script words are disguises.
    assert normalize("Привет мир").text == "Привет мир"


def test_ascii_text_has_no_map() -> None:
    assert normalize("plain ascii 123").origin is None
