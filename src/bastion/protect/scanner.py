"""The scanner: every detector over a text in one pass, findings scored, explained and de-overlapped.

Built once from ``ProtectionSettings`` (patterns compiled, NER model loaded),
then shared: ``scan`` is a pure function of its text and tenant and is safe to
call from many threads at once.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from bastion.context import Finding
from bastion.protect import validators
from bastion.protect.config import CustomPattern, DenyList, ProtectionSettings
from bastion.protect.decode import find_encoded
from bastion.protect.engine import Candidate, Engine, SwappingEngine, build_engine, hyperscan_available
from bastion.protect.entities import data_classes_of
from bastion.protect.names import NAME_THRESHOLD, UNDECIDED, apply_ner, csv_name_cells, score_names
from bastion.protect.ner import NERModel, load_ner
from bastion.protect.patterns import BUILTIN, PatternSpec
from bastion.protect.scancache import ScanCache
from bastion.protect.textmap import normalize

log = logging.getLogger("bastion.protect")

#: How much a context word nearby raises a score, and a negative word lowers it.
CONTEXT_BOOST = 0.35
NEGATIVE_PENALTY = 0.35
#: Overlap between consecutive windows when a text longer than ``max_scan_chars`` is scanned.
WINDOW_OVERLAP = 2000
#: Separators a number may run on into the next one; a failed check retries before them.
_TRIM_SEPARATORS = " .-"


class _Raw(NamedTuple):
    start: int
    end: int
    type: str
    score: float
    detector: str
    explanation: str
    validated: bool
    data_classes: tuple[str, ...]


#: Builds a _Raw from a tuple without the Python-level ``__new__`` of named tuples.
_new_raw: Callable[[type[_Raw], tuple[int, int, str, float, str, str, bool, tuple[str, ...]]], _Raw] = tuple.__new__
#: Marks a candidate not judged yet (None is a verdict: rejected).
_UNJUDGED: Any = object()


@dataclass(frozen=True, slots=True)
class _DenyMatcher:
    regex: re.Pattern[str]
    spec: DenyList


def _context_regex(words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not words:
        return None
    alts = "|".join(re.escape(w.lower()) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![a-z0-9])(?:{alts})(?![a-z0-9])")


def _custom_spec(p: CustomPattern) -> PatternSpec:
    validator = validators.resolve(p.validator) if p.validator else None
    return PatternSpec(
        name=f"custom:{p.type}", type=p.type, regex=p.regex, score=p.score, validator=validator,
        validator_name=p.validator or "", context=tuple(p.context), require_context=p.require_context,
        caseless=not p.case_sensitive, data_classes=tuple(p.data_classes), detector="custom",
        tenants=tuple(p.tenants),
    )


def _deny_matcher(d: DenyList) -> _DenyMatcher:
    terms = sorted({t.strip() for t in d.terms}, key=len, reverse=True)
    alts = "|".join(re.escape(t) for t in terms)
    return _DenyMatcher(re.compile(rf"(?<!\w)(?:{alts})(?!\w)", re.IGNORECASE), d)


class Scanner:
    """Finds sensitive data in text. Build once with ``from_settings``; call ``scan`` from anywhere."""

    def __init__(self, settings: ProtectionSettings, *, ner: NERModel | None = None,
                 engine: Engine | None = None) -> None:
        self.settings = settings
        disabled = set(settings.disabled_types)
        specs = [s for s in BUILTIN if s.type not in disabled]
        specs.extend(_custom_spec(p) for p in settings.custom_patterns)
        self._specs = tuple(specs)
        if engine is not None:
            self._engine: Engine | SwappingEngine = engine
        elif settings.engine == "auto" and hyperscan_available():
            # Custom regexes must compile for hyperscan too; checking them alone is quick.
            if settings.custom_patterns:
                build_engine([s for s in self._specs if s.detector == "custom"], "hyperscan")
            self._engine = SwappingEngine(self._specs)
        else:
            self._engine = build_engine(self._specs, settings.engine)
        self._context = [_context_regex(s.context) for s in self._specs]
        # How far around a match its judgement looks: the context windows, and two characters
        # each side for ``standalone``.
        self._reach_before = [max(s.window_before, 2) for s in self._specs]
        self._reach_after = [max(s.window_after, 2) for s in self._specs]
        self._classes = [s.data_classes or data_classes_of(s.type) for s in self._specs]
        self._negative = [_context_regex(s.negative) for s in self._specs]
        self._deny = [_deny_matcher(d) for d in settings.deny_lists]
        self._ner = ner
        self._names_enabled = "PERSON" not in disabled
        self._cache = ScanCache(settings.scan_cache_entries) if settings.scan_cache_entries else None

    @classmethod
    def from_settings(cls, settings: ProtectionSettings) -> Scanner:
        """Compile every detector and load the NER model (when installed and not turned off)."""
        ner = load_ner(settings.ner.mode, settings.ner.models)
        return cls(settings, ner=ner)

    @property
    def engine(self) -> str:
        """``hyperscan`` or ``python``: which engine matches patterns."""
        return self._engine.name

    def wait_for_engine(self, timeout: float | None = None) -> str:
        """Wait until hyperscan (compiling in the background under ``engine: auto``) serves."""
        if isinstance(self._engine, SwappingEngine):
            self._engine.wait(timeout)
        return self.engine

    @property
    def ner_active(self) -> bool:
        """Whether an NER model helps find names (the gateway says so at start-up when not)."""
        return self._ner is not None

    @property
    def ner_model(self) -> str | None:
        """The name of the NER model in use, if any."""
        return self._ner.name if self._ner is not None else None

    def scan(self, text: str, *, tenant: str | None = None) -> list[Finding]:
        """Findings in ``text`` sorted by position, overlaps resolved, offsets into ``text``."""
        cache = self._cache
        if cache is None:
            return self._scan(text, tenant)
        # A scan is a function of the text and the tenant alone (this scanner's settings are fixed).
        key = cache.key(text, tenant)
        found = cache.get(key)
        if found is None:
            found = self._scan(text, tenant)
            cache.put(key, found)
        return found

    def _scan(self, text: str, tenant: str | None) -> list[Finding]:
        limit = self.settings.max_scan_chars
        if len(text) <= limit:
            raws = self._scan_text(text, tenant, self.settings.max_decode_depth, use_ner=True)
        else:
            raws = []
            step = limit - WINDOW_OVERLAP
            for off in range(0, len(text), step):
                part = text[off : off + limit]
                raws.extend(r._replace(start=r.start + off, end=r.end + off)
                            for r in self._scan_text(part, tenant, self.settings.max_decode_depth, use_ner=True))
                if off + limit >= len(text):
                    break
        return [
            Finding(kind, start, end, round(score, 3), detector, classes, note)
            for start, end, kind, score, detector, note, _validated, classes in _resolve(raws)
        ]

    # -- internals ----------------------------------------------------------------------

    def _scan_text(self, text: str, tenant: str | None, depth: int, *, use_ner: bool) -> list[_Raw]:
        mapped = normalize(text)
        t = mapped.text
        found = self._engine.scan(t)
        raws = self._patterns(t, tenant, found.candidates)
        raws.extend(self._deny_lists(t, tenant))
        if self._names_enabled:
            raws.extend(self._names(t, use_ner=use_ner, taken=raws))
        if self.settings.decode_payloads and depth > 0:
            raws.extend(self._decoded(t, tenant, depth, found.spelled_digits))
        if mapped.origin is None:
            return raws
        out = []
        for r in raws:
            s, e = mapped.to_original(r.start, r.end)
            out.append(r._replace(start=s, end=e))
        return out

    def _patterns(self, t: str, tenant: str | None, candidates: list[Candidate]) -> list[_Raw]:
        out: list[_Raw] = []
        specs = self._specs
        reach_before, reach_after, classes = self._reach_before, self._reach_after, self._classes
        # What is made of a candidate depends only on the characters around it (the context
        # windows, the neighbours ``standalone`` looks at, the value): a value repeated in the
        # same surroundings within one text (templates, signatures) is judged once.
        judged: dict[tuple[int, int, int, int, str], tuple[int, int, float, str, bool] | None] = {}
        for c in candidates:
            idx, start, end, ms, me = c
            spec = specs[idx]
            if spec.tenants and tenant not in spec.tenants:
                continue
            lo = ms - reach_before[idx]
            if lo < 0:
                lo = 0
            key = (idx, ms - lo, start - ms, end - ms, t[lo : me + reach_after[idx]])
            verdict = judged.get(key, _UNJUDGED)
            if verdict is _UNJUDGED:
                verdict = judged[key] = self._judge(spec, c, t)
            if verdict is None:
                continue
            rel_start, rel_end, score, note, validated = verdict
            out.append(_new_raw(_Raw, (ms + rel_start, ms + rel_end, spec.type, score, spec.detector, note,
                                       validated, classes[idx])))
        return out

    def _judge(self, spec: PatternSpec, c: Candidate, t: str) -> tuple[int, int, float, str, bool] | None:
        """Score, check and explain one candidate: (start, end relative to the match, score, note, validated)."""
        if spec.standalone and not _standalone(t, c.match_start, c.match_end):
            return None
        # Context and score first: they depend on the match alone, and a candidate they
        # already rule out needs no checksum.
        score = spec.score
        ctx_note = ""
        ctx_rx, neg_rx = self._context[c.pattern], self._negative[c.pattern]
        if ctx_rx is not None or neg_rx is not None:
            window = (t[max(0, c.match_start - spec.window_before) : c.match_start] + " | "
                      + t[c.match_end : c.match_end + spec.window_after]).lower()
            m = ctx_rx.search(window) if ctx_rx is not None else None
            if m is not None:
                score += CONTEXT_BOOST
                ctx_note = f"context {m.group(0)!r} +{CONTEXT_BOOST}"
            else:
                if spec.require_context:
                    return None
                m = neg_rx.search(window) if neg_rx is not None else None
                if m is not None:
                    score -= NEGATIVE_PENALTY
                    ctx_note = f"context {m.group(0)!r} -{NEGATIVE_PENALTY}"
        elif spec.require_context:
            return None
        score = max(0.0, min(1.0, score))
        if score < self.settings.min_score:
            return None
        start, end = c.start, c.end
        validated = spec.validator is not None
        if validated:
            end = _validated_end(spec, t, start, end)
            if end < 0:
                return None
            note = f"pattern {spec.name}; {spec.validator_name or 'check'} passed"
        else:
            note = f"pattern {spec.name}"
        if ctx_note:
            note = f"{note}; {ctx_note}"
        return start - c.match_start, end - c.match_start, score, note, validated

    def _deny_lists(self, t: str, tenant: str | None) -> list[_Raw]:
        out: list[_Raw] = []
        for d in self._deny:
            if d.spec.tenants and tenant not in d.spec.tenants:
                continue
            for m in d.regex.finditer(t):
                out.append(_Raw(m.start(), m.end(), d.spec.type, d.spec.score, "deny_list",
                                "term on a deny-list", True, tuple(d.spec.data_classes)))
        return out

    def _names(self, t: str, *, use_ner: bool, taken: list[_Raw]) -> list[_Raw]:
        spans = score_names(t, csv_name_cells(t))
        lo, hi = UNDECIDED
        # The model only settles runs scoring inside its band: with none, it has nothing to do.
        if use_ner and self._ner is not None and any(lo <= s.score < hi for s in spans):
            spans = apply_ner(t, spans, self._ner, self.settings.ner.max_segment_chars,
                              [(r.start, r.end) for r in taken])
        threshold = max(NAME_THRESHOLD, self.settings.min_score)
        classes = data_classes_of("PERSON")
        return [
            _new_raw(_Raw, (s.start, s.end, "PERSON", min(1.0, s.score), "names", "; ".join(s.reasons), False,
                            classes))
            for s in spans if s.score >= threshold
        ]

    def _decoded(self, t: str, tenant: str | None, depth: int, spelled_digits: bool | None) -> list[_Raw]:
        out: list[_Raw] = []
        for d in find_encoded(t, spelled_digits):
            inner = self._scan_text(d.text, tenant, depth - 1, use_ner=False)
            for r in inner:
                if d.origin is not None:
                    s, e = d.origin[r.start], d.origin[r.end]
                else:
                    s, e = d.start, d.end
                out.append(r._replace(start=s, end=e, explanation=f"{d.encoding}-encoded: {r.explanation}"))
        return out


def _standalone(t: str, s: int, e: int) -> bool:
    """No digit touching the match, and no ``.``+digit continuing it (versions, longer numbers)."""
    if s > 0 and (t[s - 1].isdigit() or t[s - 1] == "." and s > 1 and t[s - 2].isdigit()):
        return False
    return not (e < len(t) and (t[e].isdigit() or t[e] == "." and e + 1 < len(t) and t[e + 1].isdigit()))


def _validated_end(spec: PatternSpec, t: str, start: int, end: int) -> int:
    """The end of the longest prefix (the whole match first) that passes the check, or -1."""
    assert spec.validator is not None
    if spec.validator(t[start:end]):
        return end
    if not spec.trim:
        return -1
    cut = end
    for _ in range(8):
        cut = max((t.rfind(sep, start, cut) for sep in _TRIM_SEPARATORS), default=-1)
        if cut <= start:
            return -1
        stripped = cut
        while stripped > start and t[stripped - 1] in _TRIM_SEPARATORS:
            stripped -= 1
        if spec.validator(t[start:stripped]):
            return stripped
    return -1


def _resolve(raws: list[_Raw]) -> list[_Raw]:
    """Keep the best of overlapping findings: validated first, then higher score, then longer."""
    # The same order as sorting by (not validated, -score, -length, start), with the keys built in one
    # comprehension and looked up by index (sorting is stable either way).
    keys = [(not validated, -score, start - end, start) for start, end, _, score, _, _, validated, _ in raws]
    ranked = [raws[i] for i in sorted(range(len(raws)), key=keys.__getitem__)]
    starts: list[int] = []
    kept: list[_Raw] = []
    for r in ranked:
        if r.end <= r.start:
            continue
        # Kept findings never overlap, so sorted by start their ends are sorted too:
        # only the neighbours around r's position can collide with it.
        i = bisect.bisect_left(starts, r.start)
        if i < len(kept) and kept[i].start < r.end or i > 0 and kept[i - 1].end > r.start:
            continue
        starts.insert(i, r.start)
        kept.insert(i, r)
    return kept


__all__ = ["Scanner"]
