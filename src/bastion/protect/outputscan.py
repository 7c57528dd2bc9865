"""Scanning answers, streamed or whole, for leaked data, canaries and exfiltration links.

Streams are scanned incrementally, a window of text at a time. The first text
of an answer is scanned as soon as it arrives; after that, a round runs when
``scan_window_chars`` new characters have arrived, the oldest of them has
waited ``scan_delay_ms``, or the gateway is about to wait for the provider
(``drain``: nothing more has arrived, so nothing is gained by waiting), so a
burst of small chunks costs a few scans instead of one per chunk while a model
that emits tokens one at a time has each released as it comes. Text is released as soon as
a round finds that nothing at its end could still grow into a value: the
scanner holds back only the trailing run of characters that look like part of a
value (a word, a group of digits and the groups joined to it, an unclosed
markdown link or HTML tag), and never more than ``holdback_chars``. Each round
runs the detectors over the held text plus some already-released context, so a
card number arriving in three chunks is seen whole before any of it is
released. A finding is acted on with the output
policy (redact by default); ``block`` raises ContentFiltered, which the stream
turns into a final error event (``stream_error_event``).

Order on the way back: scan the provider's text first, then restore pseudonyms,
so a user's own values restored into the answer are not redacted again.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from bastion.context import Finding, RequestContext
from bastion.errors import BastionError, ContentFiltered
from bastion.protect.actions import (
    ActionPolicy,
    AppliedAction,
    Hasher,
    ProtectedText,
    apply_actions,
)
from bastion.protect.canary import CANARY_STATE, Canary
from bastion.protect.stream import StreamRestorer
from bastion.protect.vault import PSEUDONYMS_STATE

#: A detector: a pure function of text returning findings with offsets into it.
Detector = Callable[[str], list[Finding]]
#: The sensitive-data scanner's call: ``scan(text, tenant=...)``.
TenantDetector = Callable[..., list[Finding]]

EXFIL_TYPE = "EXFILTRATION_LINK"
DEFAULT_HOLDBACK_CHARS = 64
DEFAULT_CONTEXT_CHARS = 64
DEFAULT_LINK_DATA_CHARS = 16
DEFAULT_SCAN_WINDOW_CHARS = 256
DEFAULT_SCAN_DELAY_MS = 20.0
#: Longest URL the link detector reads; longer ones are cut (and still flagged).
MAX_URL_CHARS = 4096

# Punctuation found inside values: emails, phone numbers, URLs, keys and codes.
_VALUE_PUNCT = frozenset("@.+-/=:%~#?&()*$!,;'_")
# How a later group of a spaced value starts: a digit, a capital, ``(`` or ``+``.
_GROUP_START = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ(+")
_BLANKS = frozenset(" \t")


def _value_char(ch: str) -> bool:
    return ch.isalnum() or ch in _VALUE_PUNCT


#: ASCII bytes: characters that can be part of a value become ``A``, all others a space.
_VALUE_MARKS = bytes(65 if chr(b).isascii() and _value_char(chr(b)) else 32 for b in range(256))


def _run_start(buf: str, floor: int, i: int) -> int:
    """Where the run of value characters ending at ``i`` begins, not before ``floor``."""
    part = buf[floor:i]
    if part.isascii():
        # The character after the last one that cannot be part of a value (no Python step per character).
        return floor + part.encode("ascii").translate(_VALUE_MARKS).rfind(b" ") + 1
    j = i
    while j > floor and _value_char(buf[j - 1]):
        j -= 1
    return j


def tail_start(buf: str, floor: int = 0) -> int:
    """Where the trailing run that could still grow into a value begins (linear, no regex).

    The run is a word, or groups joined by spaces where every group after the
    first starts like a number, a code or a name (``card 4242 4242``, ``Jane Doe``).
    """
    i = len(buf)
    while i > floor and buf[i - 1] in _BLANKS:
        i -= 1
    cut = i
    while True:
        j = _run_start(buf, floor, i)
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


_MD_LINK = re.compile(
    r"(!?)\[([^\]\n]{0,500}+)\]\(\s*+<?(https?://[^\s)>]{1,4096}+)>?(?:\s+\"[^\"\n]{0,200}+\")?\s*+\)"
)
_HTML_IMG = re.compile(r"<img\b[^>]{0,1000}?\bsrc\s*+=\s*+[\"']?(https?://[^\s\"'>]{1,4096}+)[^>]{0,1000}+>", re.I)
# Possessive quantifiers: a long URL with no closing bracket cannot make the match backtrack.
_BARE_URL = re.compile(r"(?<![\w(\[</\"'=])https?://[^\s<>\"')\]]{1,4096}+")
_ENCODED_RUN = re.compile(r"[A-Za-z0-9+/_=%-]{32,}")


class OutputScanSettings(BaseModel):
    """How answers are scanned."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    #: Most characters of a streamed answer held back while they might be part of a value.
    holdback_chars: int = Field(default=DEFAULT_HOLDBACK_CHARS, ge=16, le=4096)
    #: Characters of already-sent text shown to detectors as context.
    context_chars: int = Field(default=DEFAULT_CONTEXT_CHARS, ge=0, le=4096)
    #: Domains links and images may point to (a domain allows its subdomains).
    allowed_link_domains: list[str] = Field(default_factory=list)
    #: Query or fragment length from which a link to an unknown domain counts as carrying data.
    link_data_chars: int = Field(default=DEFAULT_LINK_DATA_CHARS, ge=1, le=4096)
    #: New characters of a stream gathered before a scan round (0 scans every chunk); the first text goes at once.
    scan_window_chars: int = Field(default=DEFAULT_SCAN_WINDOW_CHARS, ge=0, le=65536)
    #: Longest time new streamed text waits for its window to fill, in milliseconds (checked as chunks arrive).
    scan_delay_ms: float = Field(default=DEFAULT_SCAN_DELAY_MS, ge=0.0, le=10_000.0)


class LinkDetector:
    """Finds links and images that could carry data out to a domain not on the allow-list."""

    def __init__(self, allowed_domains: Iterable[str] = (), data_chars: int = DEFAULT_LINK_DATA_CHARS) -> None:
        self._allowed = tuple(d.lower().strip(".") for d in allowed_domains if d.strip("."))
        self._data_chars = data_chars

    def __call__(self, text: str) -> list[Finding]:
        """Findings for suspicious links and images in ``text``."""
        if "http" not in text:
            return []
        out: list[Finding] = []
        taken: list[tuple[int, int]] = []
        for m in _MD_LINK.finditer(text):
            reason = self._judge(m.group(3), image=bool(m.group(1)))
            taken.append(m.span())
            if reason:
                out.append(_link_finding(m.start(), m.end(), reason))
        for m in _HTML_IMG.finditer(text):
            reason = self._judge(m.group(1), image=True)
            taken.append(m.span())
            if reason:
                out.append(_link_finding(m.start(), m.end(), reason))
        for m in _BARE_URL.finditer(text):
            if any(s <= m.start() < e for s, e in taken):
                continue
            reason = self._judge(m.group(0), image=False)
            if reason:
                out.append(_link_finding(m.start(), m.end(), reason))
        return out

    def allowed(self, host: str) -> bool:
        """Whether ``host`` is an allowed domain or one of its subdomains."""
        host = host.lower().rstrip(".")
        return any(host == d or host.endswith("." + d) for d in self._allowed)

    def _judge(self, url: str, *, image: bool) -> str:
        try:
            parts = urlsplit(url[:MAX_URL_CHARS])
            host = parts.hostname or ""
        except ValueError:
            return "a link that cannot be parsed"
        if host and self.allowed(host):
            return ""
        if image:
            # Clients fetch images on their own: the request itself is the leak.
            return "an image from a domain not on the allow-list"
        if len(parts.query) >= self._data_chars or len(parts.fragment) >= self._data_chars:
            return "a link to a domain not on the allow-list whose query carries data"
        if _ENCODED_RUN.search(parts.path):
            return "a link to a domain not on the allow-list whose path carries encoded data"
        if _is_ip(host):
            return "a link to a bare IP address"
        return ""


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _link_finding(start: int, end: int, reason: str) -> Finding:
    return Finding(
        type=EXFIL_TYPE,
        start=start,
        end=end,
        score=0.9,
        detector="links",
        data_classes=("exfiltration",),
        explanation=reason,
    )


def run_detectors(detectors: Sequence[Detector], text: str) -> list[Finding]:
    """All detectors' findings; any detector failure fails the scan (fail closed)."""
    out: list[Finding] = []
    for detect in detectors:
        try:
            out.extend(detect(text))
        except BastionError:
            raise
        except Exception as exc:
            raise BastionError("The answer could not be scanned.") from exc
    return out


class OutputScanner:
    """Incremental scanner of one answer: ``feed`` chunks, then ``flush`` at the end."""

    def __init__(
        self,
        detectors: Sequence[Detector],
        policy: ActionPolicy,
        *,
        hasher: Hasher | None = None,
        tenant: str | None = None,
        holdback_chars: int = DEFAULT_HOLDBACK_CHARS,
        context_chars: int = DEFAULT_CONTEXT_CHARS,
        scan_window_chars: int = DEFAULT_SCAN_WINDOW_CHARS,
        scan_delay_ms: float = DEFAULT_SCAN_DELAY_MS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._detectors = tuple(detectors)
        self._policy = policy
        self._hasher = hasher
        self._tenant = tenant
        self._holdback = holdback_chars
        self._context_chars = context_chars
        self._window = scan_window_chars
        self._delay = scan_delay_ms / 1000.0
        self._clock = clock
        self._buf = ""
        self._context = ""
        self._released = 0
        #: Characters fed since the last scan round, and when the first of them arrived.
        self._unscanned = 0
        self._waiting_since = 0.0
        self._closed = False
        #: Findings acted on so far, with offsets into the whole original answer.
        self.findings: list[Finding] = []
        #: Actions applied so far, offsets into the original answer.
        self.applied: list[AppliedAction] = []

    @property
    def held(self) -> int:
        """Characters currently held back (at most ``holdback_chars`` plus a scan window)."""
        return len(self._buf)

    def feed(self, chunk: str) -> str:
        """The part of the answer that is safe to send now, with the output actions applied."""
        if self._closed:
            return ""
        self._buf += chunk
        if self._window and self._released:
            # Past the first release, new text waits for a full window or for its delay to pass.
            if not self._unscanned:
                self._waiting_since = self._clock()
            self._unscanned += len(chunk)
            if self._unscanned < self._window and self._clock() - self._waiting_since < self._delay:
                return ""
        self._unscanned = 0
        return self._guarded(final=False)

    def drain(self) -> str:
        """Scan now what waits for its window (nothing more has arrived); the hold-back stays held."""
        if self._closed or not self._unscanned:
            return ""
        self._unscanned = 0
        return self._guarded(final=False)

    def flush(self) -> str:
        """Everything still held, scanned, at the end of the answer."""
        if self._closed:
            return ""
        out = self._guarded(final=True)
        self._closed = True
        return out

    def _guarded(self, *, final: bool) -> str:
        try:
            return self._release(final=final)
        except BastionError:
            # Once stopped, nothing more of this answer is released, scanned or not.
            self._closed = True
            self._buf = ""
            raise

    def finish(self) -> str:
        """``flush``, under the name the output chain calls."""
        return self.flush()

    def scan(self, text: str) -> ProtectedText:
        """Scan and protect a whole (non-streamed) answer."""
        findings = run_detectors(self._detectors, text)
        try:
            result = self._apply(text, findings)
        finally:
            self.findings.extend(_in_answer(f, 0) for f in findings)
        self.applied.extend(result.applied)
        return result

    def _apply(self, text: str, findings: list[Finding]) -> ProtectedText:
        return apply_actions(text, findings, self._policy, tenant=self._tenant, hasher=self._hasher)

    def _release(self, *, final: bool) -> str:
        buf = self._buf
        if not buf:
            return ""
        tail_cut = len(buf) if final else self._tail_cut(buf)
        if tail_cut == 0:
            # All of it may still grow into a value; findings could only hold back more.
            return ""
        ctx = self._context
        shift = len(ctx)
        findings: list[Finding] = []
        for f in run_detectors(self._detectors, ctx + buf):
            start, end = f.start - shift, f.end - shift
            if end <= 0:
                continue  # wholly in text already sent, and acted on then
            f.start, f.end = max(0, start), end
            findings.append(f)
        cut = tail_cut if final else self._finding_cut(buf, tail_cut, findings)
        ready = [f for f in findings if f.end <= cut]
        # A finding the hold-back bound forced apart is acted on for the part being sent.
        for f in findings:
            if f.start < cut < f.end:
                f.end = cut
                ready.append(f)
        try:
            result = self._apply(buf[:cut], ready)
        finally:
            # Recorded even when the answer is blocked: the audit names what stopped it.
            self.findings.extend(_in_answer(f, self._released) for f in ready)
        self.applied.extend(_shifted(a, self._released) for a in result.applied)
        self._released += cut
        self._context = (ctx + buf[:cut])[-self._context_chars :] if self._context_chars else ""
        self._buf = buf[cut:]
        return result.text

    def _tail_cut(self, buf: str) -> int:
        """Where the tail that could still grow into a value (or a link) begins."""
        n = len(buf)
        floor = max(0, n - self._holdback)
        cut = n
        cut = tail_start(buf, floor)
        for opener, closer in (("[", ")"), ("<", ">")):
            i = buf.rfind(opener, floor)
            if i >= 0 and closer not in buf[i:]:
                cut = min(cut, i)
        return cut

    def _finding_cut(self, buf: str, cut: int, findings: list[Finding]) -> int:
        """Move the cut back so no finding is split, within the hold-back bound."""
        n = len(buf)
        floor = max(0, n - self._holdback)
        # A finding that reaches the held tail waits for it, unless that passes the bound.
        moved = True
        while moved:
            moved = False
            for f in findings:
                if f.start < cut < f.end or (f.end == n and f.start < cut):
                    if f.start >= floor:
                        cut = f.start
                        moved = True
        return max(cut, floor)


def _in_answer(f: Finding, by: int) -> Finding:
    """A copy of a finding placed in the whole answer."""
    return Finding(
        type=f.type,
        start=f.start + by,
        end=f.end + by,
        score=f.score,
        detector=f.detector,
        data_classes=f.data_classes,
        explanation=f.explanation,
        location=f.location or "output",
    )


def _shifted(a: AppliedAction, by: int) -> AppliedAction:
    return AppliedAction(
        type=a.type,
        action=a.action,
        start=a.start + by,
        end=a.end + by,
        new_start=a.new_start,
        new_end=a.new_end,
        data_classes=a.data_classes,
        merged=a.merged,
    )


class AnswerStream:
    """One streamed answer on its way back: scan the provider's text, then restore pseudonyms."""

    __slots__ = ("scanner", "restorer")

    def __init__(self, scanner: OutputScanner | None, restorer: StreamRestorer | None) -> None:
        self.scanner = scanner
        self.restorer = restorer

    def feed(self, chunk: str) -> str:
        """Text to send the client now; raises ContentFiltered when the answer is blocked."""
        text = self.scanner.feed(chunk) if self.scanner is not None else chunk
        return self.restorer.feed(text) if self.restorer is not None and text else text

    def drain(self) -> str:
        """Text that waited for a scan window, released because the provider has sent nothing more."""
        text = self.scanner.drain() if self.scanner is not None else ""
        return self.restorer.feed(text) if self.restorer is not None and text else text

    def flush(self) -> str:
        """Everything still held, at the end of the answer."""
        text = self.scanner.flush() if self.scanner is not None else ""
        if self.restorer is None:
            return text
        return self.restorer.feed(text) + self.restorer.flush()

    def finish(self) -> str:
        """``flush``, under the name the output chain calls."""
        return self.flush()


def stream_error_event(error: BastionError, request_id: str | None = None) -> str:
    """The server-sent event that ends a stream refused midway: ``data: {"error": ...}``."""
    return "data: " + json.dumps(error.to_body(request_id), separators=(",", ":")) + "\n\n"


class _ProtectedAnswer:
    """An answer stream that also records its findings and a block in the request context."""

    __slots__ = ("_answer", "_ctx", "_seen")

    def __init__(self, answer: AnswerStream, ctx: RequestContext) -> None:
        self._answer = answer
        self._ctx = ctx
        self._seen = 0

    def feed(self, text: str) -> str:
        """Scan, act and restore the next piece of the answer."""
        return self._recorded(self._answer.feed, text)

    def drain(self) -> str:
        """Release what waited for a scan window (the provider has nothing more ready)."""
        return self._recorded(lambda _: self._answer.drain(), "")

    def finish(self) -> str:
        """Release what is held at the end of the answer."""
        return self._recorded(lambda _: self._answer.flush(), "")

    def _recorded(self, step: Callable[[str], str], text: str) -> str:
        try:
            return step(text)
        except ContentFiltered as exc:
            self._ctx.decide("protect_output", "deny", "the answer was stopped: " + exc.message, **exc.details)
            raise
        except BastionError:
            self._ctx.decide("protect_output", "error", "the answer could not be scanned")
            raise
        finally:
            scanner = self._answer.scanner
            if scanner is not None and len(scanner.findings) > self._seen:
                self._ctx.findings.extend(scanner.findings[self._seen :])
                self._seen = len(scanner.findings)


class ProtectOutput:
    """The output stage: scan answers for leaks, canaries and links, then restore pseudonyms."""

    name = "protect_output"

    def __init__(
        self,
        settings: OutputScanSettings,
        policy: ActionPolicy,
        detect: TenantDetector | None = None,
        *,
        hasher: Hasher | None = None,
    ) -> None:
        self._settings = settings
        self._policy = policy
        self._detect = detect
        self._hasher = hasher
        self._links = LinkDetector(settings.allowed_link_domains, settings.link_data_chars)

    def open(self, ctx: RequestContext) -> _ProtectedAnswer | None:
        """A filter for this request's answer, or None when there is nothing to do."""
        tenant = ctx.principal.tenant if ctx.principal is not None else None
        scanner: OutputScanner | None = None
        if self._settings.enabled:
            detectors: list[Detector] = [self._links]
            if self._detect is not None:
                detect = self._detect
                detectors.insert(0, lambda text: detect(text, tenant=tenant))
            canary = ctx.state.get(CANARY_STATE)
            if isinstance(canary, Canary):
                detectors.append(canary.find)
            scanner = OutputScanner(
                detectors,
                self._policy,
                hasher=self._hasher,
                tenant=tenant,
                holdback_chars=self._settings.holdback_chars,
                context_chars=self._settings.context_chars,
                scan_window_chars=self._settings.scan_window_chars,
                scan_delay_ms=self._settings.scan_delay_ms,
            )
        values = ctx.state.get(PSEUDONYMS_STATE)
        restorer = StreamRestorer(values) if isinstance(values, dict) and values else None
        if scanner is None and restorer is None:
            return None
        return _ProtectedAnswer(AnswerStream(scanner, restorer), ctx)
