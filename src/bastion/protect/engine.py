"""Candidate matching in one pass: hyperscan when it imports, pure Python otherwise.

Both engines return exactly the same candidates. Python's ``re`` (compiled once
per pattern, ASCII semantics) decides every match; hyperscan only narrows where
it has to look. Hyperscan scans the whole text once for all patterns and
reports, per pattern, the ranges that hold a match (with the leftmost start);
Python then runs that pattern's regex only inside those ranges, continuing
exactly as a full ``finditer`` would. Because the hyperscan expression is the
same regex (named groups turned into plain ones), every Python match lies in a
reported range, so the results are identical; the tests check this on tables
and on the development set.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, Protocol

from bastion.errors import ConfigError
from bastion.protect.decode import SPELLED_DIGITS
from bastion.protect.patterns import PatternSpec

EngineName = Literal["hyperscan", "python"]
log = logging.getLogger("bastion.protect")
_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")
_WIDE_REPEAT = re.compile(r"\{(\d+),(\d+)\}")
#: Bounded repeats wider than this are opened up (``{1,64}`` -> ``{1,}``) for hyperscan only:
#: exact bounds with start-of-match tracking make databases too large, and a looser
#: expression still reports every range where the exact Python regex can match.
HS_MAX_BOUNDED_REPEAT = 16
#: Patterns whose Python matches are at most this long are compiled without start-of-match
#: tracking, which makes hyperscan scan several times faster: the range then starts this
#: many characters before the reported end (where any match ending there can start), or
#: after the last space before it for patterns that never match a space.
HS_NO_SOM_MAX_WIDTH = 1024


class Candidate(NamedTuple):
    """A regex match of one pattern: its index in the table and the reported span."""

    pattern: int
    start: int
    end: int
    #: Span of the whole match (the reported span may be the ``v`` group inside it).
    match_start: int
    match_end: int


class Scan(NamedTuple):
    """What one pass over a text found: every candidate, and whether digits may be spelled out in it."""

    candidates: list[Candidate]
    #: False when ``decode.SPELLED_DIGITS`` has no match in the text, True when it has one;
    #: None when the engine cannot tell (the decoder then checks for itself).
    spelled_digits: bool | None


class Engine(Protocol):
    name: EngineName

    def candidates(self, text: str) -> list[Candidate]:
        """All matches of all patterns in ``text``."""

    def scan(self, text: str) -> Scan:
        """All matches of all patterns in ``text``, and what else the same pass tells."""


def compile_python(spec: PatternSpec) -> re.Pattern[str]:
    """The Python regex of a pattern, with the same semantics hyperscan gives it."""
    flags = re.ASCII | (re.IGNORECASE if spec.caseless else 0)
    return re.compile(spec.regex, flags)


#: Builds a Candidate from a tuple without the Python-level ``__new__`` of named tuples.
_new_candidate: Callable[[type[Candidate], tuple[int, int, int, int, int]], Candidate] = tuple.__new__


def _emit(idx: int, m: re.Match[str]) -> Candidate:
    start, end = m.span()
    if "v" in m.re.groupindex and m.start("v") >= 0:
        vs, ve = m.span("v")
        return Candidate(idx, vs, ve, start, end)
    return Candidate(idx, start, end, start, end)


def _may_match_empty(rx: re.Pattern[str]) -> bool:
    try:
        parser: Any = importlib.import_module("re._parser")
        return bool(parser.parse(rx.pattern, rx.flags).getwidth()[0] == 0)
    except Exception:  # noqa: BLE001 - unknown: assume it can
        return True


class PythonEngine:
    """One linear regex per pattern, each run over the whole text."""

    name: EngineName = "python"

    def __init__(self, specs: Sequence[PatternSpec]) -> None:
        self._regexes = [compile_python(s) for s in specs]

    def candidates(self, text: str) -> list[Candidate]:
        """All matches of all patterns in ``text``."""
        out: list[Candidate] = []
        for idx, rx in enumerate(self._regexes):
            out.extend(_emit(idx, m) for m in rx.finditer(text))
        return out

    def scan(self, text: str) -> Scan:
        """All matches of all patterns in ``text``; spelled digits are left to the decoder."""
        return Scan(self.candidates(text), None)


def hyperscan_expression(regex: str) -> str:
    """The looser form of a regex given to hyperscan: plain groups, wide repeats opened up."""
    expr = _NAMED_GROUP.sub("(", regex)
    return _WIDE_REPEAT.sub(
        lambda m: m.group(0) if int(m.group(2)) <= HS_MAX_BOUNDED_REPEAT else "{" + m.group(1) + ",}", expr
    )


def _parsed(spec: PatternSpec) -> Any:
    parser: Any = importlib.import_module("re._parser")
    return parser.parse(spec.regex, re.ASCII | (re.IGNORECASE if spec.caseless else 0))


def max_match_chars(spec: PatternSpec) -> int | None:
    """The longest match the pattern's Python regex can make, or None when it has no bound."""
    try:
        parser: Any = importlib.import_module("re._parser")
        _lo, hi = _parsed(spec).getwidth()
        bound = int(getattr(parser, "MAXWIDTH", parser.MAXREPEAT))
    except Exception:  # noqa: BLE001 - without a known bound the pattern keeps start-of-match tracking
        return None
    return int(hi) if hi < bound else None


#: What each category of a character class matches, as a regex of its own (ASCII semantics).
_CATEGORY_TESTS = {
    "CATEGORY_DIGIT": re.compile(r"\d", re.ASCII), "CATEGORY_NOT_DIGIT": re.compile(r"\D", re.ASCII),
    "CATEGORY_SPACE": re.compile(r"\s", re.ASCII), "CATEGORY_NOT_SPACE": re.compile(r"\S", re.ASCII),
    "CATEGORY_WORD": re.compile(r"\w", re.ASCII), "CATEGORY_NOT_WORD": re.compile(r"\W", re.ASCII),
}


def _class_has(items: Any, code: int) -> bool:
    negate = False
    hit = False
    for op, av in items:
        kind = str(op)
        if kind == "NEGATE":
            negate = True
        elif kind == "LITERAL":
            hit = hit or av == code
        elif kind == "RANGE":
            hit = hit or av[0] <= code <= av[1]
        elif kind == "CATEGORY":
            test = _CATEGORY_TESTS.get(str(av))
            if test is None:
                return True  # an unknown category: assume it can
            hit = hit or test.match(chr(code)) is not None
        else:
            return True  # an unknown class item: assume it can
    return hit != negate


def _may_match_char(items: Any, code: int) -> bool:
    """Whether a parsed regex can consume the character ``code``; True whenever unsure."""
    for op, av in items:
        kind = str(op)
        if kind == "AT":
            continue
        if kind == "LITERAL":
            if av == code:
                return True
        elif kind == "NOT_LITERAL":
            if av != code:
                return True
        elif kind == "IN":
            if _class_has(av, code):
                return True
        elif kind in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            if av[1] > 0 and _may_match_char(av[2], code):
                return True
        elif kind == "SUBPATTERN":
            if _may_match_char(av[3], code):
                return True
        elif kind == "ATOMIC_GROUP":
            if _may_match_char(av, code):
                return True
        elif kind == "BRANCH":
            if any(_may_match_char(b, code) for b in av[1]):
                return True
        else:
            return True  # any, look-arounds, back-references, conditionals: assume it can
    return False


def _may_match_space(items: Any) -> bool:
    """Whether a parsed regex can consume a space; True whenever unsure."""
    return _may_match_char(items, 32)


def window(spec: PatternSpec) -> tuple[int, bool] | None:
    """How a range is found without start-of-match tracking, or None when it needs tracking.

    ``(width, stop_at_space)``: a match ending at a reported end starts at most ``width``
    characters before it, and, when the regex can never match a space, after the last
    space before it.
    """
    width = max_match_chars(spec)
    if width is None or width > HS_NO_SOM_MAX_WIDTH:
        return None
    try:
        spaceless = not _may_match_space(_parsed(spec))
    except Exception:  # noqa: BLE001 - unparsable here means unknown: no shortening
        spaceless = False
    return width, spaceless


def _digit_class(items: Any) -> bool:
    """Whether a character class holds ASCII digits only (``\\d`` under ``re.ASCII``, ``[0-9]``, ``[2-5]``)."""
    for op, av in items:
        kind = str(op)
        if kind == "LITERAL":
            if not 48 <= av <= 57:
                return False
        elif kind == "RANGE":
            if not (48 <= av[0] and av[1] <= 57):
                return False
        elif kind == "CATEGORY":
            if str(av) != "CATEGORY_DIGIT":
                return False
        else:
            return False  # negated classes and anything else may hold other characters
    return True


def _min_digits(items: Any) -> int:
    """The fewest digits any match of a parsed regex holds (a lower bound; 0 when unsure)."""
    total = 0
    for op, av in items:
        kind = str(op)
        if kind == "LITERAL":
            total += 48 <= av <= 57
        elif kind == "IN":
            total += _digit_class(av)
        elif kind in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            total += av[0] * _min_digits(av[2])
        elif kind == "SUBPATTERN":
            total += _min_digits(av[3])
        elif kind == "ATOMIC_GROUP":
            total += _min_digits(av)
        elif kind == "BRANCH":
            total += min(_min_digits(b) for b in av[1])
    return total


def min_digits(spec: PatternSpec) -> int:
    """The fewest ASCII digits a match of the pattern's Python regex holds (0 when unknown)."""
    try:
        return _min_digits(_parsed(spec))
    except Exception:  # noqa: BLE001 - unknown: no lower bound
        return 0


class Anchor(NamedTuple):
    """A character every match of a pattern holds exactly once (see ``anchor``)."""

    code: int
    #: Most characters a match can start before it.
    reach: int
    #: Per byte of the scanned text, 1 when the part of a match before the anchor may consume it, else 0.
    before: bytes
    #: Longest match: the anchor of a match ending at a reported end lies at most this far before it.
    width: int


def anchor(spec: PatternSpec) -> Anchor | None:
    """A character every match holds exactly once, and how far before it a match can start; or None.

    The regex is a sequence with that character (one without letter case) in it, and neither
    what comes before it nor what comes after can consume it. A match ending at a reported
    end then holds the last such character before that end, starts at most ``reach``
    characters before it, and after the last character before it that the part before
    cannot consume.
    """
    width = max_match_chars(spec)
    if width is None or width > HS_NO_SOM_MAX_WIDTH:
        return None  # the anchor is looked for only this far back from each report
    try:
        parser: Any = importlib.import_module("re._parser")
        parsed = _parsed(spec)
        items = list(parsed)
        bound = int(getattr(parser, "MAXWIDTH", parser.MAXREPEAT))
        for k, (op, code) in enumerate(items):
            if str(op) != "LITERAL" or chr(code).lower() != chr(code).upper():
                continue
            if _may_match_char(items[:k], code) or _may_match_char(items[k + 1 :], code):
                continue
            reach = int(parser.SubPattern(parsed.state, items[:k]).getwidth()[1])
            if reach < bound:
                return Anchor(code, reach, _consumable(items[:k], spec.caseless), width)
    except Exception:  # noqa: BLE001 - unknown: no anchor
        return None
    return None


def _consumable(items: Any, caseless: bool) -> bytes:
    """Per byte: 1 when a character scanned as that byte may be consumed by the parsed regex."""
    table = bytearray(256)
    for b in range(256):
        ch = chr(b)
        forms = {ch, ch.swapcase()} if caseless and ch.isascii() else {ch}
        # '?' also stands for every character outside Latin-1, which the regex may consume.
        table[b] = b == 63 or any(_may_match_char(items, ord(c)) for c in forms)
    return bytes(table)


def range_rule(spec: PatternSpec) -> tuple[tuple[int, bool] | None, Anchor | None]:
    """How hyperscan's ranges of a pattern are found: ``(window, anchor)``; both None means start tracking.

    A window that stops at spaces is tight already; otherwise a unique character of every
    match (the ``@`` of a spaced-out address) bounds the start far more closely than the
    width, without the cost of tracking starts.
    """
    win = window(spec)
    if win is not None and win[1]:
        return win, None
    found = anchor(spec)
    if found is not None:
        return None, found
    return win, None


def hyperscan_inputs(specs: Sequence[PatternSpec]) -> list[tuple[bytes, int]]:
    """Each pattern's hyperscan expression (Latin-1 bytes) and compile flags, then the spelled-digit cue's."""
    import hyperscan

    out: list[tuple[bytes, int]] = []
    for s in specs:
        try:
            expr = hyperscan_expression(s.prefilter or s.regex).encode("latin-1")
        except UnicodeEncodeError:
            raise ConfigError(f"pattern {s.name!r} uses characters outside Latin-1") from None
        flags = hyperscan.HS_FLAG_ALLOWEMPTY
        if range_rule(s) == (None, None):
            flags |= hyperscan.HS_FLAG_SOM_LEFTMOST
        if s.caseless:
            flags |= hyperscan.HS_FLAG_CASELESS
        out.append((expr, flags))
    # The same pass says whether digits are spelled out anywhere (one report is enough): on ASCII
    # text the decoder's regex then needs no pass of its own, nor its own check first.
    out.append((SPELLED_DIGITS.pattern.encode("ascii"),
                hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY))
    return out


def compile_database(inputs: list[tuple[bytes, int]]) -> bytes:
    """Compile expressions into one block-mode database and return it serialised."""
    import hyperscan

    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        db.compile(expressions=[e for e, _ in inputs], ids=list(range(len(inputs))), elements=len(inputs),
                   flags=[f for _, f in inputs])
    except hyperscan.error as exc:
        raise ConfigError(f"a pattern does not compile for hyperscan: {exc}") from None
    return bytes(hyperscan.dumpb(db))


def hyperscan_available() -> bool:
    """Whether the hyperscan module imports on this machine."""
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return False
    return True


#: Every byte but the ASCII digits (deleted to count digits).
_NOT_DIGITS = bytes(b for b in range(256) if not 48 <= b <= 57)


def _to_scan_bytes(text: str) -> bytes:
    # One byte per character keeps hyperscan's offsets equal to str indices. Latin-1
    # characters keep their byte; anything else becomes '?', which, like the character
    # it replaces, is neither a word character nor a space for either engine.
    return text.encode("latin-1", errors="replace")


class HyperscanEngine:
    """All patterns in one hyperscan database; Python's regex confirms inside the reported ranges."""

    name: EngineName = "hyperscan"

    def __init__(self, specs: Sequence[PatternSpec], serialized: bytes | None = None) -> None:
        import hyperscan

        self._regexes = [compile_python(s) for s in specs]
        self._empty = [_may_match_empty(rx) for rx in self._regexes]
        #: Whether a pattern reports its ``v`` group rather than the whole match.
        self._valued = ["v" in rx.groupindex for rx in self._regexes]
        #: For a pattern hyperscan sees in a looser form (``prefilter``), the digits its regex needs: a range
        #: holding fewer cannot hold a match, and is not searched.
        self._digits = [min_digits(s) if s.prefilter else 0 for s in specs]
        #: Per pattern: how far before a reported end its range starts (no start-of-match tracking), or None;
        #: or, for an anchored pattern, the anchor's byte and how far before it the range starts.
        rules = [range_rule(s) for s in specs]
        #: The id of the spelled-digit cue, after the patterns' (its report is kept as a range like theirs).
        self._spelled_id = len(specs)
        self._windows = [w for w, _ in rules] + [None]
        self._anchors: list[tuple[bytes, int, bytes, int] | None] = [
            None if a is None else (bytes([a.code]), a.reach, a.before, a.width) for _, a in rules] + [None]
        if serialized is None:
            serialized = compile_database(hyperscan_inputs(specs))
        self._db = hyperscan.loadb(serialized, hyperscan.HS_MODE_BLOCK)
        # Hyperscan scratch space may not be shared by concurrent scans: one per thread.
        self._scratch = hyperscan.Scratch(self._db)
        self._local = threading.local()

    def _ranges(self, data: bytes) -> dict[int, list[list[int]]]:
        hits: dict[int, list[list[int]]] = {}
        get = hits.get
        windows = self._windows
        anchors = self._anchors

        def on_match(pid: int, start: int, end: int, _flags: int, _ctx: Any) -> None:
            spans = get(pid)
            win = windows[pid]
            if win is not None:
                width, spaceless = win
                if spans is not None:
                    last = spans[-1]
                    if last[0] <= end - width <= last[1] and not (spaceless and b" " in data[last[1] : end]):
                        # The usual report: the same value growing by a character. Its range
                        # starts inside the last one, so it only extends it.
                        if end > last[1]:
                            last[1] = end
                        return
                # Reported without its start: a match ending here starts at most ``width`` before,
                # and after the last space when it cannot hold one.
                start = end - width if end > width else 0
                if spaceless:
                    start = data.rfind(b" ", start, end) + 1 or start
            else:
                anc = anchors[pid]
                if anc is not None:
                    # Every match holds the anchor once, and nothing after it can be one: the last
                    # anchor before the end is the match's own. The match starts within reach before
                    # it, after any character that cannot come before the anchor. With no anchor
                    # within the longest match's width, no match ends here (only hyperscan's looser
                    # expression does), so there is nothing to look at.
                    at = data.rfind(anc[0], end - anc[3] if end > anc[3] else 0, end)
                    if at < 0:
                        return
                    lo = at - anc[1] if at > anc[1] else 0
                    start = lo + data[lo:at].translate(anc[2]).rfind(0) + 1
            if spans is None:
                hits[pid] = [[start, end]]
                return
            # Reports arrive in order of end offset; merge overlapping ranges as they come.
            last = spans[-1]
            if start <= last[1]:
                if end > last[1]:
                    last[1] = end
                if start < last[0]:
                    last[0] = start
            else:
                spans.append([start, end])

        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._scratch.clone()
        self._db.scan(data, match_event_handler=on_match, scratch=scratch)
        return hits

    def candidates(self, text: str) -> list[Candidate]:
        """All matches of all patterns in ``text``."""
        return self.scan(text).candidates

    def scan(self, text: str) -> Scan:
        """All matches of all patterns in ``text``, and whether digits are spelled out in it."""
        if not text:
            return Scan([], False)
        data = _to_scan_bytes(text)
        hits = self._ranges(data)
        spelled = hits.pop(self._spelled_id, None) is not None
        out: list[Candidate] = []
        # By pattern, and each pattern's matches in order of position: sorted as callers expect.
        for idx in sorted(hits):
            ranges = _merged(hits[idx])
            need = self._digits[idx]
            if need:
                # Every match lies in its range, so a range with fewer digits than a match holds has none
                # (digits are ASCII for the regex, and one byte each in ``data``).
                ranges = [(a, b) for a, b in ranges if len(data[a:b].translate(None, _NOT_DIGITS)) >= need]
            _confirm(out, idx, self._regexes[idx], text, ranges, self._empty[idx], self._valued[idx])
        return Scan(out, spelled)


def _merged(ranges: list[list[int]]) -> list[tuple[int, int]]:
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for s, e in ranges:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _confirm(out: list[Candidate], idx: int, rx: re.Pattern[str], text: str, ranges: list[tuple[int, int]],
             empty: bool = True, valued: bool = True) -> None:
    """Append to ``out`` the matches of ``rx`` (pattern ``idx``) inside the ranges, as a full search finds them."""
    pos = 0
    n = len(text)
    for start, end in ranges:
        if start > pos:
            pos = start
        while pos <= end:
            # Every Python match lies inside a reported range, so the search can stop one
            # character past it (that character keeps \b right). A match running past the
            # range can only be an artefact of the cut, so that one is searched again in full.
            m = rx.search(text, pos, end + 1 if end < n else n)
            if m is None:
                break
            mstart, mend = m.span()
            if mend > end:
                m = rx.search(text, pos)
                if m is None:
                    break
                mstart, mend = m.span()
            if mstart > end:
                break
            if valued and m.start("v") >= 0:
                vs, ve = m.span("v")
                out.append(_new_candidate(Candidate, (idx, vs, ve, mstart, mend)))
            else:
                out.append(_new_candidate(Candidate, (idx, mstart, mend, mstart, mend)))
            pos = mend if mend > mstart else mend + 1
            if pos == end and not empty:
                break  # only an empty match could still fit, and this regex has none


def build_engine(specs: Sequence[PatternSpec], choice: str = "auto") -> Engine:
    """The hyperscan engine when asked for (or ``auto`` and installed), else the Python one."""
    if choice == "python" or (choice == "auto" and not hyperscan_available()):
        return PythonEngine(specs)
    if choice == "hyperscan" and not hyperscan_available():
        raise ConfigError("protection.engine is hyperscan, but hyperscan is not installed")
    return HyperscanEngine(specs)


class SwappingEngine:
    """The Python engine at once, replaced by hyperscan when its database has compiled.

    Compiling every pattern into one hyperscan database takes seconds; the results of
    the two engines are identical, so the scanner serves with Python meanwhile and
    switches with one reference assignment (atomic for readers in other threads).
    """

    def __init__(self, specs: Sequence[PatternSpec]) -> None:
        self._current: Engine = PythonEngine(specs)
        self._specs = tuple(specs)
        self._thread = threading.Thread(target=self._compile, name="bastion-hyperscan-compile", daemon=True)
        self._thread.start()

    @property
    def name(self) -> EngineName:
        """The engine serving right now."""
        return self._current.name

    def _compile(self) -> None:
        # The hyperscan compiler holds the GIL for seconds, so it runs in a child interpreter;
        # this thread only waits, and the serialised database loads in milliseconds.
        import hyperscan

        from bastion.protect import hscache
        from bastion.protect.hscompile import compile_in_child

        try:
            inputs = hyperscan_inputs(self._specs)
            key = hscache.cache_key(inputs, str(getattr(hyperscan, "__version__", "")))
            cached = hscache.load(key)
            if cached is not None:
                engine = self._trusted(cached)
                if engine is not None:
                    self._current = engine
                    return
            serialized = compile_in_child(inputs)
            self._current = HyperscanEngine(self._specs, serialized)
            hscache.store(key, serialized)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the (identical) Python engine
            log.warning("hyperscan is not used; the Python engine keeps serving: %s", exc)

    def _trusted(self, serialized: bytes) -> Engine | None:
        """A cached database, only if it finds exactly what the Python engine finds."""
        from bastion.protect.hscache import SELF_TEST_TEXT

        try:
            engine = HyperscanEngine(self._specs, serialized)
            if engine.candidates(SELF_TEST_TEXT) == self._current.candidates(SELF_TEST_TEXT):
                return engine
        except Exception as exc:  # noqa: BLE001 - an unreadable cache is recompiled
            log.info("cached hyperscan database unreadable (%s); compiling again", type(exc).__name__)
            return None
        log.info("cached hyperscan database did not pass its self-test; compiling again")
        return None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the compilation to end; whether hyperscan now serves."""
        self._thread.join(timeout)
        return self._current.name == "hyperscan"

    def candidates(self, text: str) -> list[Candidate]:
        """All matches of all patterns in ``text`` (from whichever engine serves now)."""
        return self._current.candidates(text)

    def scan(self, text: str) -> Scan:
        """All matches of all patterns in ``text``, and what else the pass tells (whichever engine serves)."""
        return self._current.scan(text)
