"""The scanner's shortcuts change nothing: remembered results, skipped decoders and runs, range windows."""

from __future__ import annotations

import random
import re
from functools import cache

import pytest

from bastion.protect import ProtectionSettings, Scanner, names
from bastion.protect import decode as dec
from bastion.protect.engine import (
    HS_NO_SOM_MAX_WIDTH,
    HyperscanEngine,
    PythonEngine,
    _may_match_space,
    anchor,
    hyperscan_available,
    min_digits,
    range_rule,
    window,
)
from bastion.protect.patterns import BUILTIN, PatternSpec
from bastion.protect.scancache import ScanCache

needs_hs = pytest.mark.skipif(not hyperscan_available(), reason="hyperscan is not installed")

#: Pieces random texts are made of: values, near misses, words, separators, other scripts.
PIECES = [
    "4111 1111 1111 1111", "4111-1111-1111-1112", "536-22-8471", "+1 415 555 0134", "(415) 555-0134",
    "jane.doe@example.com", "jane at example dot com", "jane [at] example [dot] com", "a @ b . com",
    "DE89 3704 0044 0532 0130 00", "192.168.10.4", "2001:db8::1", "AKIAIOSFODNN7EXAMPLE",
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "password=hunter2x9", "token: abcdef123456",
    "postgres://app:s3cret@db:5432/x", "MRN 00482913", "DOB 1985-03-14", "born March 3, 1985",
    "42 Elm Street, Springfield, IL 62704", "Hauptstraße 12, 10115 Berlin", "12 rue de la Paix",
    "five three six two two one two three four", "one two three", "SGVsbG8gd29ybGQgc2VjcmV0IQ==",
    "48656c6c6f20776f726c6421", "jane%40example.com", "Dr. Maria Gonzalez", "Dear Tomasz,",
    "Customer", "Summarise", "the", "and", "notes", "IBAN", "EUR", "Bank of Spain", "O'Neil-Smith",
    "naïve", "Ünïcödé", "日本語", "Σωκράτης", "—", " ", "  ", "\n", "\t", ",", ".", "-", "(", ")",
    ":", ";", "@", "%", "_", "/", "=", "1", "12", "123456789", "x" * 20, "A" * 17, "Ab" * 9,
]


def random_texts(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rnd.choice(PIECES) for _ in range(rnd.randrange(1, 30))]
        seps = [rnd.choice(["", " ", " ", "\n", ", "]) for _ in parts]
        out.append("".join(p + s for p, s in zip(parts, seps, strict=True)))
    return out


# --- remembered results -------------------------------------------------------------------


@cache
def scanner(entries: int = 64) -> Scanner:
    settings = ProtectionSettings(
        ner={"mode": "off"}, engine="python", scan_cache_entries=entries,
        custom_patterns=[{"type": "EMPLOYEE_ID", "regex": r"\bEMP-\d{6}\b", "tenants": ["acme"]}],
    )
    return Scanner(settings)


def test_a_repeated_text_gets_the_same_findings_as_new_objects() -> None:
    s = scanner()
    text = "Card 4111 1111 1111 1111 for Dr. Maria Gonzalez, jane.doe@example.com"
    first = s.scan(text)
    second = s.scan(text)
    assert first == second and first
    assert all(a is not b for a, b in zip(first, second, strict=True))
    # A caller moving its findings (the answer scanner does) changes nobody else's.
    second[0].start += 1000
    second[0].location = "output"
    assert s.scan(text) == first
    assert s.scan(text) == scanner(0).scan(text)


def test_results_are_kept_per_tenant() -> None:
    s = scanner()
    text = "Badge EMP-123456 issued."
    assert [f.type for f in s.scan(text, tenant="acme")] == ["EMPLOYEE_ID"]
    assert s.scan(text, tenant="other") == []
    assert s.scan(text) == []
    assert [f.type for f in s.scan(text, tenant="acme")] == ["EMPLOYEE_ID"]


def test_cache_is_off_at_zero_and_bounded_otherwise() -> None:
    assert scanner(0)._cache is None
    c = ScanCache(10)
    for i in range(100):
        c.put(c.key(f"text {i}", None), [])
    assert len(c) <= 10


def test_texts_seen_once_do_not_push_out_texts_seen_twice() -> None:
    c = ScanCache(10)
    history = [c.key(f"message {i}", None) for i in range(5)]
    for k in history:
        c.put(k, [])
        assert c.get(k) == []  # a second sight protects it
    for i in range(1000):
        c.put(c.key(f"stream window {i}", None), [])
    assert all(c.get(k) == [] for k in history)
    assert c.get(c.key("stream window 3", None)) is None


def test_cache_keys_are_keyed_digests_not_text() -> None:
    a, b = ScanCache(4), ScanCache(4)
    key = a.key("Jane Doe 536-22-8471", "acme")
    assert b"Jane" not in key[0] and len(key[0]) == 16
    assert key != b.key("Jane Doe 536-22-8471", "acme")  # each cache has its own key
    assert a.key("x", "acme") != a.key("x", "other")


def test_cached_and_uncached_scanners_agree_on_random_texts() -> None:
    cached, plain = scanner(), scanner(0)
    for text in random_texts(150, seed=3) * 2:
        assert cached.scan(text, tenant="acme") == plain.scan(text, tenant="acme")


# --- decoders and name runs skipped only where they cannot match --------------------------


def test_spelled_digit_shortcut_never_hides_a_match() -> None:
    rnd = random.Random(5)
    words = [*dec._DIGIT_WORDS, "ten", "phone", "someone", "ONE", "Two", "oh"]
    seps = [" ", ",", ".", "-", " - ", ", ", "(", ")", "!", "\n", "_", "  "]
    for _ in range(3000):
        text = "".join(rnd.choice(words) + rnd.choice(seps) for _ in range(rnd.randrange(1, 14)))
        if dec.SPELLED_DIGITS.search(text):
            assert dec._may_spell_digits(text), text


def _seven_digit_words_in_a_row(text: str) -> bool:
    run = 0
    for w in re.sub(r"[^a-z0-9_]", " ", text.lower()).split():
        run = run + 1 if w in dec._DIGIT_WORDS else 0
        if run >= 7:
            return True
    return False


def test_spelled_digit_shortcut_is_exactly_seven_digit_words_in_a_row() -> None:
    rnd = random.Random(7)
    words = [*dec._DIGIT_WORDS, "ten", "phone", "someone", "ONE", "Two", "oh", "twos", "_one", "one1"]
    seps = [" ", ",", ".", "-", " - ", ", ", "(", ")", "!", "\n", "_", "  ", "", "\t"]
    hits = 0
    for _ in range(4000):
        text = "".join(rnd.choice(words) + rnd.choice(seps) for _ in range(rnd.randrange(1, 16)))
        assert dec._may_spell_digits(text) == _seven_digit_words_in_a_row(text), text
        hits += _seven_digit_words_in_a_row(text)
    assert hits > 100


def _stretches_word_by_word(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"[A-Za-z0-9+/_=-]+", text, re.ASCII)
            if len(m.group(0)) >= dec.MIN_ENCODED_CHARS]


def test_encoded_stretches_are_the_long_runs_of_either_alphabet() -> None:
    extra = ["", "A" * 16, "A" * 15, " " + "b" * 16 + " " + "c" * 40, "é" + "A" * 20 + "é", "x" * 15 + "?" + "y" * 16]
    for text in random_texts(400, seed=37) + extra:
        assert dec._encoded_stretches(text) == _stretches_word_by_word(text), text


def test_encoded_runs_found_stretch_by_stretch_as_in_the_whole_text() -> None:
    extra = ["SGVsbG8gd29ybGQ=x==ab", "é" + "A" * 20 + "é", "x" * 15 + "=" + "y" * 15, "0x" + "ab" * 10 + "_z"]
    for text in random_texts(400, seed=11) + extra:
        spans = dec._encoded_stretches(text)
        whole_b64 = [m.span() for m in dec._BASE64.finditer(text)]
        whole_hex = [m.span() for m in dec._HEX.finditer(text)]
        assert [m.span() for a, b in spans for m in dec._BASE64.finditer(text, a, b)] == whole_b64
        assert [m.span() for a, b in spans for m in dec._HEX.finditer(text, a, b)] == whole_hex


def _capitalised_texts() -> list[str]:
    rnd = random.Random(59)
    # Codes and placeholders in capitals (dense capitals), ordinary words, particles, other scripts.
    pieces = ["The", "Please", "IBAN", "DE89", "[PERSON]", "EMAIL_ADDRESS", "INV-2291", "A", "I.", "MD", "Jr.",
              "van", "de", "Daniel", "O'Neil-Smith", "Mc'Donald", "x", "iPhone", "-", ".", ",", "1", "é", "Ó"]
    seps = [" ", " ", "  ", "\n", "", ", ", "\u00a0", ". ", "_"]
    texts = ["".join(rnd.choice(pieces) + rnd.choice(seps) for _ in range(rnd.randrange(1, 30))) for _ in range(3000)]
    return random_texts(400, seed=13) + texts + ["A", "Ab Cd", "x Y", "Mc'Donald O'Neil-Smith Jr. van der Berg"]


def test_capitalised_regions_found_at_capitals_as_by_the_regex() -> None:
    rx = names._cap_region()
    dense = 0
    for text in _capitalised_texts():
        assert [m.span() for m in names._cap_regions(text)] == [m.span() for m in rx.finditer(text)], text
        dense += text.isascii() and sum(map(str.isupper, text)) * names._DENSE_CAPITALS > len(text)
    assert dense > 500  # both ways of finding them are checked


def test_region_words_split_as_the_token_pattern_finds_them() -> None:
    for text in _capitalised_texts():
        for m in names._cap_region().finditer(text):
            expected = [(m.start() + t.start(), m.start() + t.end(), t.group(0))
                        for t in names._TOKEN.finditer(m.group(0))]
            assert names._tokens(m.group(0), m.start()) == expected, m.group(0)


def test_cue_lookup_stops_at_a_last_word_no_cue_ends_in() -> None:
    rnd = random.Random(61)
    words = ["dear", "signed", "by", "my", "name", "is", "to", "from", "Hi", "thank", "you", "desk", "the", "--", "I'm"]
    ends = ["", " ", ": ", ", ", "  ", " - ", ".", "\n", " \n", "\t"]
    for _ in range(5000):
        before = " ".join(rnd.choice(words) for _ in range(rnd.randrange(0, 5))) + rnd.choice(ends)
        stripped = before.rstrip(" \t:,.-")
        gap = before[len(stripped):]
        expected = None
        if stripped and not (len(gap) > 3 or "\n" in gap and len(gap) > 1):
            ws = [w.strip(names._WORD_EDGE) for w in stripped.lower().split()[-3:]]
            phrases = [" ".join(ws[-k:]) for k in (1, 2, 3) if len(ws) >= k]
            if 0 < len(gap) <= 2 and not gap.strip(" ,") and any(p in names._GREETINGS for p in phrases):
                expected = (0.6, "greeting before")
            elif any(p in names._STRONG_CUES for p in phrases):
                expected = (0.4, "cue word before")
            elif gap == " " and ws and ws[-1] in names._WEAK_CUES:
                expected = (0.1, "weak cue before")
        assert names._cue_before(before) == expected, before


def test_cue_after_ruled_out_only_where_the_pattern_cannot_match() -> None:
    rnd = random.Random(67)
    pieces = [" ", "\t", "\n", "\u00a0", "\u2003", "\x1c", ",", ":", ";", "(", "'", "’", "<", "s", "S", "ſ", "K",
              "İ", "ı", "wrote", "said", "she", "he", "they", "is a", "was born", "MD", "PhD", "age", "manager", "x",
              "jane@", "'s", "has been", "will be", "who", "works", "asked", "the", "Smith", "é", "1", ".", "-"]
    hits = 0
    for _ in range(30000):
        after = "".join(rnd.choice(pieces) for _ in range(rnd.randrange(0, 6)))
        expected = names._AFTER_CUE.search(after) is not None
        assert names._after_cue(after) is expected, repr(after)
        hits += expected
    assert hits > 300


def test_joiner_never_matches_a_longer_gap() -> None:
    for gap in [" and ", " and \n", ", ", " / ", " & ", " or \n", " und  ", " and\n\n", "  and ", ",\n"]:
        if names._JOINER.match(gap):
            assert len(gap) <= names._JOINER_CHARS, gap


NAME_PIECES = [
    "Procurement", "Both", "Risks", "Daniel", "Okafor", "May", "Dear", "dear", "Hi", "signed by", "Thanks", "and",
    "Und", "Dr.", "said", "wrote", "is a", "'s", "Smith", "Jr.", "Paris", "patient", "Li", "A.", "van", "with",
    "Okafor, Chidi", "Kunde", "Herr", "Müller", "(manager", "who", "Sincerely", "my name is", "I'm", "thank you",
]
NAME_SEPS = [" ", " ", ". ", ", ", "\n", ": ", " - ", "; ", "! ", "  ", " / ", " & ", "(", ")", "\n\n", "\t"]


def test_one_word_runs_left_out_have_no_cue_on_either_side() -> None:
    rnd = random.Random(19)
    texts = ["".join(rnd.choice(NAME_PIECES) + rnd.choice(NAME_SEPS) for _ in range(rnd.randrange(1, 20)))
             for _ in range(4000)]
    left_out = 0
    for text in texts + random_texts(400, seed=23):
        for run in names._runs(text):
            if len(run) != 1:
                continue
            s, e, tok = run[0]
            if names._weightless(text, s, e, tok):
                left_out += 1
                core_end = e - 1 if text[e - 1] == "." and len(tok) > 2 else e
                assert names._cue_before(text[max(0, s - 40) : s]) is None, (text, tok)
                assert not names._AFTER_CUE.search(text[core_end : core_end + 40]), (text, tok)
    assert left_out > 1000


def test_leaving_one_word_runs_out_changes_no_span_that_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(29)
    texts = ["".join(rnd.choice(NAME_PIECES) + rnd.choice(NAME_SEPS) for _ in range(rnd.randrange(1, 20)))
             for _ in range(3000)] + random_texts(400, seed=31)

    def counting(spans: list[names.NameSpan]) -> list[tuple[int, int, float, list[str], int, int]]:
        # What the scanner and the model see: spans from the model's band up.
        return [(s.start, s.end, s.score, s.reasons, s.core_start, s.core_end)
                for s in spans if s.score >= names.UNDECIDED[0]]

    fast = [counting(names.score_names(t, names.csv_name_cells(t))) for t in texts]
    monkeypatch.setattr(names, "_weightless", lambda *_: False)
    assert [counting(names.score_names(t, names.csv_name_cells(t))) for t in texts] == fast


def test_header_shortcut_never_skips_a_header_naming_people() -> None:
    rnd = random.Random(17)
    cells = ["Name", "full_name", "Nachname", "patient", "ID", "email", "Imię", "NOME", "city", "Kunde", "x1"]
    for _ in range(2000):
        line = rnd.choice([",", ";", "\t", "|"]).join(rnd.choice(cells) for _ in range(rnd.randrange(1, 5)))
        header = [c.strip().strip("\"'") for c in re.split("[,;\t|]", line)]
        if any(names._NAME_HEADER.search(h) for h in header) and not any(ch.isdigit() for ch in line):
            assert names._may_be_header(line), line


# --- hyperscan ranges without start-of-match tracking -------------------------------------


def _spec(regex: str) -> PatternSpec:
    return PatternSpec("t", "T", regex, 0.5)


@pytest.mark.parametrize(
    ("regex", "space"),
    [
        (r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}\b", False),
        (r"\d{3}[ .-]\d{4}", True),
        (r"a\sb", True),
        (r"a\Sb", False),
        (r"[^x]", True),
        (r"[^ ]", False),
        (r"a\Db", True),
        (r"a\Wb", True),
        (r"(?:ab|c d)", True),
        (r"x(?=y)", True),  # look-arounds: unsure, so yes
        (r"a.b", True),
    ],
)
def test_space_analysis(regex: str, space: bool) -> None:
    import importlib

    parser = importlib.import_module("re._parser")
    assert _may_match_space(parser.parse(regex, re.ASCII)) is space


def test_windows_of_patterns() -> None:
    assert window(_spec(r"\b\d{3}-\d{2}-\d{4}\b")) == (11, True)
    assert window(_spec(r"\b\d{3} \d{4}\b")) == (8, False)
    assert window(_spec(r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}\.[a-z]{2,24}\b")) == (153, True)
    assert window(_spec(r"\bpassword[ \t]{0,3}=[ \t]{0,3}\S{6,200}")) == (215, False)
    assert window(_spec(r"\beyJ[A-Za-z0-9_-]{8,}")) is None  # no bound
    assert window(_spec("a" * HS_NO_SOM_MAX_WIDTH + " ")) is None  # too wide


def test_anchors_of_patterns() -> None:
    spaced = r"\b[A-Za-z0-9._+-]{1,40}[ \t]{0,3}@[ \t]{0,3}[A-Za-z0-9-]{1,63}(?:[ \t]{0,3}\.[ \t]{0,3}[a-z]{2,6})\b"
    found = anchor(_spec(spaced))
    assert found is not None and found[:2] == (ord("@"), 43)
    assert range_rule(_spec(spaced)) == (None, found)
    # What may stand before the '@': the local part's characters, spaces and tabs (and '?', which
    # stands for characters outside Latin-1).
    assert {chr(b) for b in range(256) if found.before[b]} == set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+- \t?")
    # Stopping at spaces is tight already: the anchor is not used.
    plain = r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}\.[a-z]{2,24}\b"
    assert range_rule(_spec(plain)) == ((153, True), None)
    assert anchor(_spec(r"\w+ @ \w+@x")) is None  # two of them
    assert anchor(_spec(r"[\w@]{1,5} ?@x")) is None  # the part before can hold one
    assert anchor(_spec(r"a{1,5} ?@[^x]")) is None  # so can the part after
    assert anchor(_spec(r"(?:a|@)bc")) is None  # not at the top level
    assert anchor(_spec(r"[a-z]+ @b")) is None  # before it unbounded
    assert anchor(_spec(r"a{1,5} @ [a-z]+")) is None  # a match's anchor is looked for within its width
    found = anchor(_spec(r"a{1,5} @ [a-z]{1,9}"))
    assert found is not None and found[:2] == (ord("@"), 6) and found.width == 17
    caseless = anchor(PatternSpec("t", "T", r"a{1,5} @ [a-z]{1,9}", 0.5, caseless=True))
    assert caseless is not None and caseless.before[ord("A")] and not found.before[ord("A")]
    assert range_rule(_spec(r"\b\d{3}[ .]\d{4}\b")) == ((8, False), None)
    assert range_rule(_spec(r"\b\d{3} \d{4}\b"))[1][:2] == (32, 3)  # type: ignore[index]  # a space too
    assert range_rule(_spec(r"\beyJ[A-Za-z0-9_-]{8,}")) == (None, None)  # start tracking


@needs_hs
def test_engines_identical_on_random_texts() -> None:
    py, hs = PythonEngine(BUILTIN), HyperscanEngine(BUILTIN)
    for text in random_texts(500, seed=23):
        key = lambda c: (c.pattern, c.match_start)  # noqa: E731
        assert sorted(py.candidates(text), key=key) == hs.candidates(text), text


@needs_hs
@pytest.mark.slow
def test_ranges_without_start_tracking_stay_linear_on_adversarial_input() -> None:
    import time

    from tests.unit.test_detect_engine import _adversarial

    s = Scanner(ProtectionSettings(ner={"mode": "off"}, scan_cache_entries=0), engine=HyperscanEngine(BUILTIN))
    for text in _adversarial():
        t0 = time.perf_counter()
        s.scan(text)
        elapsed = time.perf_counter() - t0
        assert elapsed < 5.0, f"scan took {elapsed:.2f}s on {text[:12]!r}..."


@needs_hs
def test_engines_identical_on_addresses_with_spaces_and_several_at_signs() -> None:
    # Spaced-out addresses are found from their '@' back: the last one before each reported end.
    rnd = random.Random(41)
    gaps = ["", "", " ", "  ", "\t", "   ", "    "]
    noise = ["(", ", ", "é", "ā", "?", "x" * 41, "a_b", "+", "-", "\n", " ", "@", " @ ", "mail"]
    locals_ = ["jane", "jane.doe", "j-d+x", "x" * 39, "x" * 41, "ā", "_", "1"]
    py, hs = PythonEngine(BUILTIN), HyperscanEngine(BUILTIN)
    key = lambda c: (c.pattern, c.match_start)  # noqa: E731
    spaced = [s.name for s in BUILTIN].index("email_spaced")
    hits = 0
    for _ in range(3000):
        parts = []
        for _ in range(rnd.randrange(1, 4)):
            parts += [rnd.choice(noise), rnd.choice(locals_), rnd.choice(gaps), "@", rnd.choice(gaps),
                      rnd.choice(["example", "ex-ample", "a"]), rnd.choice(gaps), ".", rnd.choice(gaps),
                      rnd.choice(["com", "org", "co", "c0m", "sub . com"])]
        text = "".join(parts)
        expected = sorted(py.candidates(text), key=key)
        assert hs.candidates(text) == expected, text
        hits += any(c.pattern == spaced for c in expected)
    assert hits > 1000


@pytest.mark.parametrize(
    ("regex", "digits"),
    [
        (r"\b\d(?:[ .-]{0,3}\d){12,18}\b", 13),
        (r"\b[12] ?\d{2} ?(?:\d{2}|2[AB])\b", 4),
        (r"(?:\+\d{1,3}|\(\+\d{1,3}\))\d", 2),
        (r"[0-9]{3}-[2-5]x", 4),
        (r"[^a]{5}\d", 1),  # a negated class may hold anything
        (r"\w{9}", 0),
        (r"(?:ab)?\d{0,4}", 0),
    ],
)
def test_fewest_digits_of_a_match(regex: str, digits: int) -> None:
    assert min_digits(_spec(regex)) == digits


@needs_hs
def test_engines_identical_on_runs_of_digit_groups() -> None:
    # The card pattern's looser hyperscan form reports phone numbers and codes too; ranges with too few
    # digits for a card are not searched.
    rnd = random.Random(71)
    groups = ["4111", "1111", "415", "555", "0134", "+1", "+44", "20", "7946", "0958", "DE89", "3704", "00", "1", "12"]
    seps = [" ", "-", ".", "  ", " - ", "", ", ", "(", ")", "\n", "x"]
    py, hs = PythonEngine(BUILTIN), HyperscanEngine(BUILTIN)
    key = lambda c: (c.pattern, c.match_start)  # noqa: E731
    card = [s.name for s in BUILTIN].index("credit_card")
    cards = 0
    for _ in range(3000):
        text = "".join(rnd.choice(groups) + rnd.choice(seps) for _ in range(rnd.randrange(1, 14)))
        expected = sorted(py.candidates(text), key=key)
        assert hs.candidates(text) == expected, text
        cards += any(c.pattern == card for c in expected)
    assert cards > 200


@needs_hs
def test_hyperscan_pass_tells_exactly_whether_digits_are_spelled_out() -> None:
    rnd = random.Random(43)
    words = [*dec._DIGIT_WORDS, "ten", "phone", "someone", "ONE", "Two", "oh", "twos", "_one", "one1"]
    seps = [" ", ",", ".", "-", " - ", ", ", "(", ")", "!", "\n", "_", "  ", "", "\t", "    "]
    hs = HyperscanEngine(BUILTIN)
    texts = ["".join(rnd.choice(words) + rnd.choice(seps) for _ in range(rnd.randrange(0, 16))) for _ in range(3000)]
    hits = 0
    for text in texts + random_texts(300, seed=47):
        found = hs.scan(text).spelled_digits
        assert found is (dec.SPELLED_DIGITS.search(text) is not None), text
        hits += bool(found)
        if text.isascii():
            assert list(dec.find_encoded(text, found)) == list(dec.find_encoded(text)), text
    assert hits > 50
    assert PythonEngine(BUILTIN).scan("one two three four five six seven").spelled_digits is None


def _phone_by_parser(value: str) -> bool:
    """The phone check as phonenumbers' parser alone decides it (the reference for the shortcuts)."""
    import phonenumbers

    from bastion.protect.validators import _TRUNK_REGIONS, digits_of

    d = digits_of(value)
    if not 7 <= len(d) <= 15 or len(set(d)) == 1:
        return False
    value = value.strip()
    if value.startswith("(+"):
        value = "+" + value[2:].replace(")", " ", 1)
    regions = (None,) if value.startswith("+") else _TRUNK_REGIONS if value.startswith("0") else ("US",)
    for region in regions:
        try:
            if phonenumbers.is_possible_number(phonenumbers.parse(value, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def test_international_numbers_judged_as_phonenumbers_parses_them() -> None:
    import phonenumbers

    from bastion.protect.validators import phone

    rnd = random.Random(53)
    codes = [*sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE), 0, 5, 28, 42, 80, 999]
    cases = ["+44 20 7946 0958", "+1 415 555 0134", "(+44) 20 7946 0958", "+49 (0)30 901820", "+39 06 6988 4857",
             "+44 (0) 20 7946 0958", "+7 495 123-45-67", "+0 123 4567 89", "+1-800-555-0199.", "+44 20 7946 0958 x12",
             "+44 20 ٧٩٤٦ 0958", "＋44 20 7946 0958", "+44 20 7946 0958)", "++44 20 7946 0958", "+44/20 7946 0958"]
    for code in codes:
        for length in range(0, 16):
            for _ in range(3):
                digits = "".join(rnd.choice("0123456789") for _ in range(length))
                national = ("0" if rnd.random() < 0.3 else "") + digits
                chars = []
                for ch in str(code) + national:
                    chars.append(ch)
                    if rnd.random() < 0.25:
                        chars.append(rnd.choice([" ", "-", ".", "  ", "(", ")", " - "]))
                cases.append("+" + "".join(chars))
    assert len(cases) > 5000
    for case in cases:
        assert phone(case) is _phone_by_parser(case), case


def test_overlaps_resolved_as_by_sorting_with_the_ranking_key() -> None:
    import bisect

    from bastion.protect.scanner import _Raw, _resolve

    def reference(raws: list[_Raw]) -> list[_Raw]:
        ranked = sorted(raws, key=lambda r: (not r.validated, -r.score, -(r.end - r.start), r.start))
        starts: list[int] = []
        kept: list[_Raw] = []
        for r in ranked:
            i = bisect.bisect_left(starts, r.start)
            if r.end <= r.start or i < len(kept) and kept[i].start < r.end or i > 0 and kept[i - 1].end > r.start:
                continue
            starts.insert(i, r.start)
            kept.insert(i, r)
        return kept

    rnd = random.Random(73)
    for _ in range(5000):
        raws = []
        for k in range(rnd.randrange(0, 12)):
            start = rnd.randrange(0, 30)
            raws.append(_Raw(start, start + rnd.randrange(-1, 8), rnd.choice("AB"), rnd.choice([0.5, 0.9, 0.3 + 0.35]),
                             "d", f"n{k}", rnd.random() < 0.5, ()))
        assert _resolve(raws) == reference(raws)


def test_iban_check_agrees_with_stdnum() -> None:
    from stdnum import iban as std_iban

    from bastion.protect.validators import iban

    rnd = random.Random(29)
    valid = ["DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32", "FR14 2004 1010 0505 0001 3M02 606",
             "ES91 2100 0418 4502 0005 1332", "NL91 ABNA 0417 1643 00", "BE68 5390 0754 7034",
             "IT60X0542811101000000123456", "CH93 0076 2011 6238 5295 7", "PL61 1090 1014 0000 0712 1981 2874",
             "NO93 8601 1117 947"]
    cases = list(valid)
    for v in valid:
        chars = list(v)
        for _ in range(30):
            c = chars[:]
            i = rnd.randrange(len(c))
            c[i] = rnd.choice("0123456789ABCXZ -٣é")
            cases.append("".join(c))
        cases += [v.lower(), v.replace(" ", "-"), v[:-1], v + "0", "XX" + v[2:], v[:2] + "00" + v[4:]]
    cases += ["", "DE", "DE89", "DE89 ", "1234 5678"]
    for case in cases:
        compact = "".join(case.split()).replace("-", "").upper()
        assert iban(case) is bool(std_iban.is_valid(compact)), case
