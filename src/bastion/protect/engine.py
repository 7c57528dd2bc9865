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

import logging
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bastion.errors import ConfigError
from bastion.protect.patterns import PatternSpec

EngineName = Literal["hyperscan", "python"]
log = logging.getLogger("bastion.protect")
_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")
_WIDE_REPEAT = re.compile(r"\{(\d+),(\d+)\}")
#: Bounded repeats wider than this are opened up (``{1,64}`` -> ``{1,}``) for hyperscan only:
#: exact bounds with start-of-match tracking make databases too large, and a looser
#: expression still reports every range where the exact Python regex can match.
HS_MAX_BOUNDED_REPEAT = 16


@dataclass(frozen=True, slots=True)
class Candidate:
    """A regex match of one pattern: its index in the table and the reported span."""

    pattern: int
    start: int
    end: int
    #: Span of the whole match (the reported span may be the ``v`` group inside it).
    match_start: int
    match_end: int


class Engine(Protocol):
    name: EngineName

    def candidates(self, text: str) -> list[Candidate]:
        """All matches of all patterns in ``text``."""


def compile_python(spec: PatternSpec) -> re.Pattern[str]:
    """The Python regex of a pattern, with the same semantics hyperscan gives it."""
    flags = re.ASCII | (re.IGNORECASE if spec.caseless else 0)
    return re.compile(spec.regex, flags)


def _emit(idx: int, m: re.Match[str]) -> Candidate:
    start, end = m.span()
    if "v" in m.re.groupindex and m.start("v") >= 0:
        vs, ve = m.span("v")
        return Candidate(idx, vs, ve, start, end)
    return Candidate(idx, start, end, start, end)


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


def hyperscan_expression(regex: str) -> str:
    """The looser form of a regex given to hyperscan: plain groups, wide repeats opened up."""
    expr = _NAMED_GROUP.sub("(", regex)
    return _WIDE_REPEAT.sub(
        lambda m: m.group(0) if int(m.group(2)) <= HS_MAX_BOUNDED_REPEAT else "{" + m.group(1) + ",}", expr
    )


def hyperscan_inputs(specs: Sequence[PatternSpec]) -> list[tuple[bytes, int]]:
    """Each pattern's hyperscan expression (Latin-1 bytes) and compile flags."""
    import hyperscan

    out: list[tuple[bytes, int]] = []
    for s in specs:
        try:
            expr = hyperscan_expression(s.prefilter or s.regex).encode("latin-1")
        except UnicodeEncodeError:
            raise ConfigError(f"pattern {s.name!r} uses characters outside Latin-1") from None
        flags = hyperscan.HS_FLAG_SOM_LEFTMOST | hyperscan.HS_FLAG_ALLOWEMPTY
        if s.caseless:
            flags |= hyperscan.HS_FLAG_CASELESS
        out.append((expr, flags))
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
        if serialized is None:
            serialized = compile_database(hyperscan_inputs(specs))
        self._db = hyperscan.loadb(serialized, hyperscan.HS_MODE_BLOCK)
        # Hyperscan scratch space may not be shared by concurrent scans: one per thread.
        self._scratch = hyperscan.Scratch(self._db)
        self._local = threading.local()

    def _ranges(self, data: bytes) -> dict[int, list[list[int]]]:
        hits: dict[int, list[list[int]]] = {}

        def on_match(pid: int, start: int, end: int, _flags: int, _ctx: Any) -> None:
            spans = hits.setdefault(pid, [])
            # Reports arrive in order of end offset; merge overlapping ranges as they come.
            if spans and start <= spans[-1][1]:
                if end > spans[-1][1]:
                    spans[-1][1] = end
                if start < spans[-1][0]:
                    spans[-1][0] = start
            else:
                spans.append([start, end])

        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._scratch.clone()
        self._db.scan(data, match_event_handler=on_match, scratch=scratch)
        return hits

    def candidates(self, text: str) -> list[Candidate]:
        """All matches of all patterns in ``text``."""
        if not text:
            return []
        out: list[Candidate] = []
        for idx, ranges in self._ranges(_to_scan_bytes(text)).items():
            out.extend(_confirm(idx, self._regexes[idx], text, _merged(ranges)))
        out.sort(key=lambda c: (c.pattern, c.match_start))
        return out


def _merged(ranges: list[list[int]]) -> list[tuple[int, int]]:
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for s, e in ranges:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _confirm(idx: int, rx: re.Pattern[str], text: str, ranges: list[tuple[int, int]]) -> Iterator[Candidate]:
    pos = 0
    n = len(text)
    for start, end in ranges:
        pos = max(pos, start)
        while pos <= end:
            # Every Python match lies inside a reported range, so the search can stop one
            # character past it (that character keeps \b right). A match running past the
            # range can only be an artefact of the cut, so that one is searched again in full.
            m = rx.search(text, pos, min(n, end + 1))
            if m is not None and m.end() > end:
                m = rx.search(text, pos)
            if m is None or m.start() > end:
                break
            yield _emit(idx, m)
            pos = m.end() if m.end() > m.start() else m.end() + 1


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
