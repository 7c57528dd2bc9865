"""Which patterns can possibly match a text, for many patterns in one hyperscan pass.

The detector's decisions are all made by Python's ``re``; this module only
says which regexes are worth running. Each Python regex is parsed (with the
parser ``re`` itself uses) and written out again as a looser hyperscan
expression: every assertion (``\\b``, ``^``, ``$``, look-arounds) is dropped
(a look-behind that opens the pattern becomes "start of text, or a character
it accepts"), wide repeats are opened up, ``.`` also matches a newline, and the shorthand
classes ``\\w``, ``\\s``, ``\\d`` accept every non-ASCII character (inside a
negated class they keep only their ASCII members). Each change only widens
the set of strings matched, so whenever the Python regex matches anywhere in a
text, or in any slice of it, the hyperscan expression matches in the text
too. A pattern hyperscan does not report therefore cannot match, and skipping
it changes nothing; a reported pattern is run by ``re``.

Texts are scanned as UTF-8 in hyperscan's UTF-8 mode. A text that is not
valid UTF-8 (lone surrogates) gets "every pattern possible", as does any
pattern that cannot be translated, and so does everything while no database
is loaded: the pure-Python path is always the reference.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bastion.errors import ConfigError

log = logging.getLogger("bastion.protect")

EngineChoice = Literal["auto", "hyperscan", "python"]

_parser: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

#: Bounded repeats wider than this are opened up (``{0,40}`` -> ``{0,}``): exact wide bounds
#: make hyperscan databases large and slow to build, and a looser repeat is still a superset.
MAX_BOUNDED_REPEAT = 16
_LAST_CODE_POINT = 0x10FFFF

# The ASCII members of Python's shorthand classes for str patterns (each has non-ASCII ones too).
_WORD_ASCII = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_SPACE_ASCII = [(0x09, 0x0D), (0x1C, 0x20)]
_DIGIT_ASCII = [(0x30, 0x39)]


def _complement_ascii(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    pos = 0
    for lo, hi in sorted(ranges):
        if lo > pos:
            out.append((pos, lo - 1))
        pos = hi + 1
    if pos <= 0x7F:
        out.append((pos, 0x7F))
    return out


_NON_ASCII = (0x80, _LAST_CODE_POINT)
#: For each category: (a superset of it, a subset of it), as code point ranges.
_CATEGORIES: dict[str, tuple[list[tuple[int, int]], list[tuple[int, int]]]] = {
    "CATEGORY_WORD": ([*_WORD_ASCII, _NON_ASCII], _WORD_ASCII),
    "CATEGORY_NOT_WORD": ([*_complement_ascii(_WORD_ASCII), _NON_ASCII], _complement_ascii(_WORD_ASCII)),
    "CATEGORY_SPACE": ([*_SPACE_ASCII, _NON_ASCII], _SPACE_ASCII),
    "CATEGORY_NOT_SPACE": ([*_complement_ascii(_SPACE_ASCII), _NON_ASCII], _complement_ascii(_SPACE_ASCII)),
    "CATEGORY_DIGIT": ([*_DIGIT_ASCII, _NON_ASCII], _DIGIT_ASCII),
    "CATEGORY_NOT_DIGIT": ([*_complement_ascii(_DIGIT_ASCII), _NON_ASCII], _complement_ascii(_DIGIT_ASCII)),
}


#: For a literal written against lower-cased text: each ASCII letter with every code point
#: whose ``str.lower()`` contains it (a test checks this against the whole Unicode table).
LOWER_CASE_SOURCES: dict[int, list[int]] = {
    **{ord(c): [ord(c), ord(c.upper())] for c in "abcdefghijklmnopqrstuvwxyz"},
    ord("i"): [ord("i"), ord("I"), 0x130],
    ord("k"): [ord("k"), ord("K"), 0x212A],
}


class Untranslatable(ValueError):
    """A regex construct with no looser hyperscan equivalent here (the pattern is always run)."""


def _cp(c: int) -> str:
    if 0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A:
        return chr(c)
    return f"\\x{{{c:x}}}"


def _ranges_text(ranges: list[tuple[int, int]]) -> str:
    return "".join(_cp(lo) if lo == hi else f"{_cp(lo)}-{_cp(hi)}" for lo, hi in ranges)


def _class(items: list[tuple[Any, Any]], caseless: dict[int, list[int]] | None) -> str:
    negated = bool(items) and items[0][0] is _c.NEGATE
    ranges: list[tuple[int, int]] = []
    for op, av in items[1:] if negated else items:
        if op is _c.LITERAL:
            ranges.extend((x, x) for x in _variants_of(av, caseless))
        elif op is _c.RANGE:
            if caseless is not None and not negated:
                raise Untranslatable("caseless range")
            ranges.append((av[0], av[1]))
        elif op is _c.CATEGORY:
            loose, tight = _CATEGORIES.get(str(av), (None, None))
            if loose is None or tight is None:
                raise Untranslatable(f"category {av}")
            # [^X] matches what X does not: a smaller X there is the looser class.
            ranges.extend(tight if negated else loose)
        else:
            raise Untranslatable(f"class item {op}")
    if negated and caseless is not None:
        raise Untranslatable("caseless negated class")
    if not ranges:
        raise Untranslatable("empty class")
    return ("[^" if negated else "[") + _ranges_text(sorted(set(ranges))) + "]"


def _variants_of(c: int, caseless: dict[int, list[int]] | None) -> list[int]:
    if caseless is None:
        return [c]
    return caseless.get(c, [c])


def _before(av: Any, caseless: dict[int, list[int]] | None, *, negative: bool) -> str:
    """A leading look-behind at one character, as a consumed character (or the text's start)."""
    direction, sub = av
    items = list(sub)
    if direction != -1 or len(items) != 1 or caseless is not None:
        return ""
    op, arg = items[0]
    # The set S the preceding character is tested against, as class items, and whether negated.
    if op is _c.LITERAL:
        cls, negated = [(_c.LITERAL, arg)], False
    elif op is _c.NOT_LITERAL:
        cls, negated = [(_c.LITERAL, arg)], True
    elif op is _c.IN:
        negated = bool(arg) and arg[0][0] is _c.NEGATE
        cls = list(arg[1:]) if negated else list(arg)
    else:
        return ""
    # (?<!S): a character outside S, or the start; (?<=S): a character in S.
    outside = negative != negated
    body = _class(([(_c.NEGATE, None)] if outside else []) + cls, None)
    return f"(?:^|{body})" if negative else body


def _translate(items: Any, caseless: dict[int, list[int]] | None, *, top: bool = False) -> str:
    out: list[str] = []
    for k, (op, av) in enumerate(items):
        if top and k == 0 and op in (_c.ASSERT, _c.ASSERT_NOT):
            # A look-behind that opens the pattern tests the character before the match:
            # matching that character too keeps the superset (only whether it matches counts).
            out.append(_before(av, caseless, negative=op is _c.ASSERT_NOT))
            continue
        if op is _c.LITERAL:
            alts = _variants_of(av, caseless)
            out.append(_cp(av) if len(alts) == 1 else "[" + _ranges_text([(x, x) for x in sorted(alts)]) + "]")
        elif op is _c.NOT_LITERAL:
            if caseless is not None:
                raise Untranslatable("caseless negated literal")
            out.append(f"[^{_cp(av)}]")
        elif op is _c.ANY:
            out.append(".")
        elif op is _c.IN:
            out.append(_class(av, caseless))
        elif op is _c.CATEGORY:
            out.append(_class([(op, av)], caseless))
        elif op is _c.BRANCH:
            out.append("(?:" + "|".join(_translate(b, caseless) for b in av[1]) + ")")
        elif op is _c.SUBPATTERN:
            if av[1] & (re.IGNORECASE | re.VERBOSE):
                raise Untranslatable("inline flags")
            out.append("(?:" + _translate(av[-1], caseless) + ")")
        elif op is _c.ATOMIC_GROUP:
            out.append("(?:" + _translate(av, caseless) + ")")
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
            lo, hi, sub = av
            lo = min(lo, MAX_BOUNDED_REPEAT)
            bound = f"{{{lo},}}" if hi is _c.MAXREPEAT or hi > MAX_BOUNDED_REPEAT else f"{{{lo},{hi}}}"
            out.append(f"(?:{_translate(sub, caseless)}){bound}")
        elif op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            # An assertion consumes nothing: without it the expression matches more.
            continue
        else:
            raise Untranslatable(f"regex construct {op}")
    return "".join(out)


def loose_expression(pattern: re.Pattern[str], caseless: dict[int, list[int]] | None = None) -> str:
    """The hyperscan expression that matches wherever ``pattern`` can (see the module docstring).

    ``caseless``: for a pattern meant to match a lower-cased text, each literal code point
    mapped to every code point of the original text that lower-cases to it.
    """
    if pattern.flags & (re.IGNORECASE | re.VERBOSE):
        raise Untranslatable("flags")
    if not isinstance(pattern.pattern, str):
        raise Untranslatable("bytes pattern")
    if caseless is None:
        return _translated(pattern.pattern, pattern.flags)
    return _translate(_parser.parse(pattern.pattern, pattern.flags), caseless, top=True)


@functools.lru_cache(maxsize=1024)
def _translated(pattern: str, flags: int) -> str:
    # Parsing the rule set takes tens of milliseconds: every detector built shares the work.
    return _translate(_parser.parse(pattern, flags), None, top=True)


def literal_expression(text: str, caseless: dict[int, list[int]] | None = None) -> str:
    """The hyperscan expression of a literal string."""
    return loose_expression(re.compile(re.escape(text)), caseless)


def hyperscan_available() -> bool:
    """Whether the hyperscan module imports on this machine."""
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return False
    return True


def _flags() -> int:
    import hyperscan

    return int(
        hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_DOTALL | hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
    )


def _compile(inputs: list[tuple[bytes, int]]) -> bytes:
    import hyperscan

    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        db.compile(
            expressions=[e for e, _ in inputs], ids=list(range(len(inputs))), elements=len(inputs),
            flags=[f for _, f in inputs],
        )
    except hyperscan.error as exc:
        raise ConfigError(f"an injection pattern does not compile for hyperscan: {exc}") from None
    return bytes(hyperscan.dumpb(db))


class _Database:
    """A loaded block-mode database and per-thread scratch space."""

    def __init__(self, serialized: bytes, ids: list[int]) -> None:
        import hyperscan

        self._db = hyperscan.loadb(serialized, hyperscan.HS_MODE_BLOCK)
        # Scratch space may not be shared by concurrent scans: one per thread.
        self._scratch = hyperscan.Scratch(self._db)
        self._local = threading.local()
        self._ids = ids

    def scan(self, data: bytes) -> set[int]:
        found: set[int] = set()
        ids = self._ids
        add = found.add

        def on_match(pid: int, _start: int, _end: int, _flags: int, _ctx: Any) -> None:
            add(ids[pid])

        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._scratch.clone()
        self._db.scan(data, match_event_handler=on_match, scratch=scratch)
        return found


@dataclass(frozen=True, slots=True)
class Cue:
    """One pattern of a prefilter: its hyperscan expression (None: always tried) and the exact test."""

    expression: str | None
    matches: Callable[[str], bool]


def regex_cue(pattern: re.Pattern[str]) -> Cue:
    """The cue of a Python regex: its loose expression, or always tried when it has none."""
    try:
        expression: str | None = loose_expression(pattern)
    except Untranslatable:
        expression = None
    return Cue(expression, lambda text: pattern.search(text) is not None)


class Prefilter:
    """For a fixed list of cues: the indices of those that can match a text.

    ``possible(text)`` returns a set of indices, or None meaning "any of them" (no database
    yet, hyperscan unavailable, or a text hyperscan cannot read). With ``engine="auto"`` the
    database is compiled in a background thread (in a child interpreter, cached on disk)
    and used once ready; ``"hyperscan"`` loads or compiles it at once and fails when it
    cannot; ``"python"`` never uses one. Before a database serves, it must report every cue
    whose exact test passes on each of ``self_test`` texts.
    """

    def __init__(
        self, name: str, cues: Sequence[Cue], *, engine: EngineChoice = "auto", self_test: Sequence[str] = ()
    ) -> None:
        self.name = name
        self._cues = tuple(cues)
        self._db: _Database | None = None
        self._always = frozenset(i for i, c in enumerate(cues) if c.expression is None)
        self._inputs = [(c.expression.encode("utf-8"), i) for i, c in enumerate(cues) if c.expression is not None]
        self._self_test = tuple(self_test)
        self._thread: threading.Thread | None = None
        if engine == "python" or not self._inputs:
            return
        if engine == "hyperscan":
            if not hyperscan_available():
                raise ConfigError("the injection engine is hyperscan, but hyperscan is not installed")
            if not self._load(compile_here=True):
                raise ConfigError(f"the injection {name} database failed its self-test")
            return
        if hyperscan_available():
            self._thread = threading.Thread(target=self._background, name=f"bastion-hs-{name}", daemon=True)
            self._thread.start()

    @property
    def engine(self) -> str:
        """``hyperscan`` once its database serves, else ``python``."""
        return "hyperscan" if self._db is not None else "python"

    def wait(self, timeout: float | None = None) -> str:
        """Wait for a background compilation to end; the engine serving then."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.engine

    def possible(self, text: str) -> set[int] | None:
        """Indices of the cues that can match ``text``; None when every one must be tried."""
        db = self._db
        if db is None:
            return None
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            return None
        found = db.scan(data)
        if self._always:
            found |= self._always
        return found

    def _hs_inputs(self) -> list[tuple[bytes, int]]:
        flags = _flags()
        return [(e, flags) for e, _ in self._inputs]

    def _passes(self, db: _Database) -> bool:
        for text in self._self_test:
            found = db.scan(text.encode("utf-8")) | self._always
            if any(i not in found and c.matches(text) for i, c in enumerate(self._cues)):
                return False
        return True

    def _install(self, serialized: bytes) -> bool:
        db = _Database(serialized, [i for _, i in self._inputs])
        if not self._passes(db):
            return False
        self._db = db
        return True

    def _load(self, *, compile_here: bool) -> bool:
        """Use the cached database, or compile one (here or in a child) and cache it."""
        import hyperscan

        from bastion.protect import hscache
        from bastion.protect.hscompile import compile_in_child

        inputs = self._hs_inputs()
        key = hscache.cache_key(inputs, f"{getattr(hyperscan, '__version__', '')}/injection")
        cached = hscache.load(key)
        if cached is not None:
            try:
                if self._install(cached):
                    return True
            except Exception as exc:  # noqa: BLE001 - an unreadable cache is compiled again
                log.info("cached injection database unreadable (%s); compiling again", type(exc).__name__)
        # The compiler holds the GIL for a second or two: in the background it runs in a
        # child interpreter so the gateway keeps serving meanwhile.
        serialized = _compile(inputs) if compile_here else compile_in_child(inputs)
        if not self._install(serialized):
            return False
        hscache.store(key, serialized)
        return True

    def _background(self) -> None:
        try:
            if not self._load(compile_here=False):
                log.warning("the injection %s database failed its self-test; the Python path serves", self.name)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the (identical) Python path
            log.warning("hyperscan is not used for injection %s: %s", self.name, exc)


_shared: dict[tuple[str, tuple[str | None, ...], str], Prefilter] = {}
_shared_lock = threading.Lock()


def shared_prefilter(
    name: str, cues: Sequence[Cue], *, engine: EngineChoice = "auto", self_test: Sequence[str] = ()
) -> Prefilter:
    """A prefilter for these cues, built once per process and engine choice, then shared.

    Cues with the same expressions have the same exact tests (they are built from the same
    regexes), so detectors built alike share one database instead of each compiling it.
    """
    key = (name, tuple(c.expression for c in cues), engine)
    with _shared_lock:
        pf = _shared.get(key)
        if pf is None:
            pf = _shared[key] = Prefilter(name, cues, engine=engine, self_test=self_test)
        return pf
