"""Names of people in free text: capitalised-token runs weighed by cues, a name list and NER.

A run of capitalised words becomes a PERSON finding when enough evidence adds
up: an honorific before it (``Dr.``, ``Frau``), a cue word (``Dear``,
``patient``, ``signed by``, ``manager:``), a column headed ``name`` in CSV, a
known given name, a suffix (``MD``, ``Jr.``), or the NER model's verdict.
Evidence against it: organisation and place words, common capitalised words,
a single word with no cue. Runs the cues already settle never reach the
model, which keeps the model's share of the scan small.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from bastion.protect.ner import NERModel

#: Score a name needs before it is reported (the scanner's threshold also applies).
NAME_THRESHOLD = 0.5
#: Longest run of name words considered one name.
MAX_NAME_TOKENS = 5
#: Runs scoring inside this band are handed to the NER model when one is loaded.
UNDECIDED = (0.3, 0.6)
#: Characters of context on each side of an undecided run that the model sees.
NER_CONTEXT_CHARS = 100

_TOKEN = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*\.?")
_TITLES = frozenset(
    "mr mrs ms miss mx dr prof professor sir dame lady lord rev fr sr sra srta herr frau fräulein mme mlle "
    "monsieur madame m signor signora sig dott ing pan pani dhr mevr capt captain col gen lt sgt judge hon".split()
)
_SUFFIXES = frozenset("jr jr. sr sr. ii iii iv md m.d. phd ph.d. dds dmd rn np pa esq esq. cpa mba do dvm".split())
_PARTICLES = frozenset(
    "van von der den de del della di da dos das du le la ten ter bin binti bint ibn al el ben mac ní nic "
    "ó ua y e zu".split()
)
#: Words before a run that say a person follows (weight 0.4); phrases of up to three words.
_STRONG_CUES = frozenset(
    """dear|hi|hello|hey|greetings|patient|customer|client|employee|manager|supervisor|approved by|signed by|
    signed|submitted by|prepared by|reviewed by|written by|authored by|requested by|assigned to|attn|attention|
    contact|name|full name|applicant|candidate|tenant|member|guest|passenger|driver|recipient|sender|
    beneficiary|account holder|cardholder|insured|policyholder|physician|doctor|nurse|colleague|husband|wife|
    son|daughter|mother|father|brother|sister|spouse|owner|sincerely|regards|cheers|cc|met with|spoke with|
    talked to|my name is|i am|i'm|this is|m'appelle|je suis|me llamo|soy|mi chiamo|sono|ich bin|ich heiße|
    ich heisse|mein name ist|nazywam się|jestem|mijn naam is|ik ben|jag heter|nombre|paciente|cliente|señor|
    señora|sr|sra|nom|prénom|monsieur|madame|kunde|kundin|patientin|herr|frau|nome|paziente|signor|signora|
    naam|klant|imię|nazwisko|pan|pani|thanks to|thank you|on behalf of|according to|courtesy of|
    introduce|introducing|meet|welcome|congratulations|congrats|condolences to"""
    .replace("\n", "").replace("    ", "").split("|")
)
#: Greetings: a single word after one is a name ("Hi Siobhán,", "Sehr geehrter Herr Dietrich").
_GREETINGS = frozenset(
    """dear|hi|hello|hey|hallo|bonjour|hola|ciao|salut|liebe|lieber|sehr geehrte|sehr geehrter|estimado|
    estimada|caro|cara|beste|drogi|droga""".replace("\n", "").replace("    ", "").split("|")
)
_WEAK_CUES = frozenset(
    "for with and of about per via is was told asked ask thank thanks to from by call email user partner".split()
)
_WORD_EDGE = "()[]{}\"'“”«»,;:.!?-"


def _cue_before(before: str) -> tuple[float, str] | None:
    """The cue that ends right before a run, looked up by its last one to three words."""
    stripped = before.rstrip(" \t:,.-")
    gap = before[len(stripped):]
    if not stripped or len(gap) > 3 or "\n" in gap and len(gap) > 1:
        return None
    last = stripped.rsplit(None, 1)
    if not last or last[-1].lower().strip(_WORD_EDGE) not in _CUE_LAST_WORDS:
        return None  # every phrase looked up ends in one of these words
    words = [w.strip(_WORD_EDGE) for w in stripped.lower().split()[-3:]]
    phrases = [" ".join(words[-k:]) for k in (1, 2, 3) if len(words) >= k]
    if 0 < len(gap) <= 2 and not gap.strip(" ,") and any(p in _GREETINGS for p in phrases):
        return 0.6, "greeting before"
    if any(p in _STRONG_CUES for p in phrases):
        return 0.4, "cue word before"
    if gap == " " and words and words[-1] in _WEAK_CUES:
        return 0.1, "weak cue before"
    return None


#: Words joining two names: the second of "Ingrid Lindqvist and Tomasz Wiśniewski".
_JOINER = re.compile(r"^(?:\s(?:and|und|et|y|e|i|or|&)\s|,\s|\s/\s)$", re.IGNORECASE)
#: The longest text ``_JOINER`` matches (five characters, and a final newline before ``$``).
_JOINER_CHARS = 6
_AFTER_CUE = re.compile(
    r"^(?:\s(?:wrote|writes|said|says|called|asked|replied|reported|joined|left|signed|approved|is\s(?:a|an|the|our)|"
    r"was\s(?:a|an|the|born)|who|has\sbeen|will\sbe)\b|,\s(?:MD|PhD|RN|the|our|who|a|an|born|age|aged)\b|\s?\((?:manager|"
    r"age|born|dob|mrn|id|employee|patient|he|she|they)|'s\b|’s\b|\s<[^>@\s]+@|"
    r"[,:;]?\s(?:she|he|they)(?:'s|’s|\s(?:is|was|has|will|said|asked|works|joined))\b)",
    re.IGNORECASE,
)
#: After the whitespace an ``_AFTER_CUE`` match may open with comes one of these: the first letter of
#: one of its words (either case), '(' or '<'.
_AFTER_CUE_SECOND = frozenset("wscarjliht" + "WSCARJLIHT" + "(<")


def _after_cue(after: str) -> bool:
    """``_AFTER_CUE.search(after)``, ruled out first by the one or two characters every match opens with."""
    first = after[:1]
    if first.isspace():
        second = after[1:2]
        if second.isascii() and second not in _AFTER_CUE_SECOND:
            return False
    elif first.isascii() and first not in ",:;('":
        return False
    return _AFTER_CUE.search(after) is not None


#: Capitalised words that are not names (sentence starters, calendar, roles, tech).
_COMMON = frozenset(
    """a an the this that these those there here it its i we you he she they me my our your their his her
    please thanks thank hi hello dear hey yes no not ok okay sure can could would should will shall may might
    must do does did done is are was were be been being have has had what when where which who whom why how
    if then else and or but so as at by for from in into of on to up with about after before during over
    under between all any each every some many much more most other such only own same than too very just
    also again once customer patient employee manager client user admin team staff member feedback summary
    discharge admitted follow followup follow-up performance review draft wire instructions vendor payout
    beneficiary amount invoice corporate card questions reach ticket order tracking ref build version
    explain sort write summarise summarize convert table json python function numbers number name email
    phone address street city country state zip code id date time note notes subject re fw fwd regards
    sincerely best kind cheers monday tuesday wednesday thursday friday saturday sunday january february
    march april may june july august september october november december today tomorrow yesterday
    morning evening night week month year q1 q2 q3 q4 api sdk json xml html http https url sql aws gcp
    azure linux windows mac ios android google microsoft amazon apple meta openai github gitlab slack
    stripe docker kubernetes rfc tls ssl ssh dns cpu gpu ram ssd llm ai ml hr it pr ceo cto cfo vp
    inc ltd llc gmbh corp plc co company group bank university college school hospital clinic institute
    foundation department ministry agency council committee board office center centre service services
    cloud platform project program programme product system systems data security network labs studio
    avenue road lane drive boulevard court place square park river lake mount north south east west new
    old great united kingdom republic states america europe asia africa pacific atlantic american
    european english french german spanish italian chinese japanese russian indian british
    mrn ssn dob nhs npi iban visa mastercard amex ok error warning info debug true false null none
    capital paris london berlin madrid rome tokyo ship deliver send dr mr mrs ms prof sir
    hospital medicine cardiology oncology pneumonia covid street st ave rd blvd ln way suite apt
    log login logout account accounts password token key secret server host client request response
    reply draft attached attachment please kindly urgent important confidential internal external
    agenda minutes meeting call sync standup demo release sprint roadmap budget forecast report
    chapter section figure appendix page step task issue bug fix feature test tests testing
    cardholder holder beneficiary applicant candidate tenant guest passenger driver recipient sender
    insured policyholder physician doctor nurse colleague owner contact attn attention kunde kundin
    patientin paciente cliente nombre paziente klant signed approved reviewed prepared submitted
    herzliche grüße gruß viele freundlichen freundliche mit besten beste saludos cordiales atentamente
    cordialement bien amicalement distinti cordiali saluti groeten vriendelijke pozdrawiam hälsningar
    notes meeting head finance legal sales marketing engineering operations support
    """.split()
)
_ORG_WORDS = frozenset(
    """inc inc. ltd ltd. llc gmbh ag sa corp corp. plc company group bank university college school hospital
    clinic institute foundation department ministry agency council committee board office center centre
    services cloud platform project airport station street avenue road lane drive boulevard city county
    province region church museum hotel restaurant cafe market store shop labs technologies solutions
    systems partners holdings capital ventures consulting association society union federation league cup
    championship streams stream framework engine server database bridge tower festival conference summit
    awards prize tournament stadium arena cathedral palace castle temple mosque canyon mountains valley
    island islands peninsula ocean sea bay gulf coast desert forest national international global
    manager director engineer officer president analyst specialist consultant coordinator assistant
    representative executive administrator developer architect designer scientist success""".split()
)


@lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    """The given-name list shipped with Bastion (lower case)."""
    text = resources.files("bastion.protect").joinpath("data/first_names.txt").read_text(encoding="utf-8")
    return frozenset(w for line in text.splitlines() if not line.startswith("#") for w in line.split())


@lru_cache(maxsize=1)
def place_names() -> frozenset[str]:
    """Multi-word place names shipped with Bastion (lower case), which look like names but are not."""
    text = resources.files("bastion.protect").joinpath("data/places.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


@dataclass(slots=True)
class NameSpan:
    """A candidate name: its span (title and suffix included as reported), score and reasons."""

    start: int
    end: int
    score: float
    reasons: list[str]
    core_start: int
    core_end: int


def _is_cap(tok: str) -> bool:
    if not tok[0].isupper():
        return False
    # All-capital words are acronyms, except initials and name suffixes (MD, DDS, PhD, III).
    return len(tok) == 1 or not tok.isupper() or len(tok) <= 3 and tok.endswith(".") or tok.lower() in _SUFFIXES


@lru_cache(maxsize=1)
def _cap_region() -> re.Pattern[str]:
    """Stretches of capitalised words (and particles between them) joined by single spaces."""
    upper: list[str] = []
    start = prev = -2
    for code in range(0x10000):
        if chr(code).isupper():
            if code != prev + 1:
                if start >= 0:
                    upper.append(_class_range(start, prev))
                start = code
            prev = code
    upper.append(_class_range(start, prev))
    word = rf"[{''.join(upper)}][^\W\d_]*(?:['’-][^\W\d_]+)*\.?"
    particle = "(?:" + "|".join(sorted(_PARTICLES, key=len, reverse=True)) + ")"
    return re.compile(rf"{word}(?:[ \u00a0](?:{particle}[ \u00a0]){{0,3}}{word})*")


def _class_range(a: int, b: int) -> str:
    return re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"


#: ASCII bytes: capital letters become ``A``, everything else a space.
_CAPITALS = bytes(65 if 65 <= b <= 90 else 32 for b in range(256))
#: Above one capital letter in this many characters, the regex engine's own walk over the text
#: costs less than starting it at every capital.
_DENSE_CAPITALS = 32


@lru_cache(maxsize=1)
def _ascii_cap_region() -> re.Pattern[str]:
    """``_cap_region()`` for ASCII text, where its classes come down to ASCII letters and a space."""
    word = r"[A-Z][A-Za-z]*(?:['-][A-Za-z]+)*\.?"
    particle = "(?:" + "|".join(sorted(_PARTICLES, key=len, reverse=True)) + ")"
    return re.compile(rf"{word}(?: (?:{particle} ){{0,3}}{word})*")


def _cap_regions(text: str) -> list[re.Match[str]]:
    """``_cap_region().finditer(text)``, trying the regex only where a capital letter stands in ASCII text."""
    if not text.isascii():
        return list(_cap_region().finditer(text))
    # A region starts with a capital letter; memchr finds those far faster than the regex engine,
    # unless they are so many (codes, placeholders in capitals) that its own walk is cheaper.
    caps = text.encode("ascii").translate(_CAPITALS)
    rx = _ascii_cap_region()
    if caps.count(65) * _DENSE_CAPITALS > len(text):
        return list(rx.finditer(text))
    out: list[re.Match[str]] = []
    find, match, append = caps.find, rx.match, out.append
    pos = find(65)
    while pos >= 0:
        m = match(text, pos)
        if m is not None:
            append(m)
            pos = m.end()
        else:
            pos += 1
        pos = find(65, pos)
    return out


def _runs(text: str) -> list[list[tuple[int, int, str]]]:
    """Runs of capitalised words (with particles and initials) separated by single spaces."""
    runs: list[list[tuple[int, int, str]]] = []
    n = len(text)
    for region in _cap_regions(text):
        words = region.group(0)
        if words in _CAPITALISED_NEVER_ALONE:
            # The commonest region by far: a sentence starting with an ordinary word ("The", "Please").
            continue
        cur: list[tuple[int, int, str]] = []
        base = region.start()
        first = words[0]
        if " " not in words and "\u00a0" not in words and first.isalnum() and not first.isdecimal():
            # One word starting with a letter: the whole region is its only token, and a run of its own,
            # which a lone title, particle or ordinary word cannot make a name of.
            s, e = base, region.end()
            if not _is_cap(words) or _norm(words) in _NEVER_ALONE:
                continue
            glued = s > 0 and (text[s - 1].isdigit() or text[s - 1] in "_@/") or e < n and (
                text[e].isdigit() or text[e] in "_@")
            if not glued:
                runs.append([(s, e, words)])
            continue
        for s, e, tok in _tokens(words, base):
            # A word glued to digits, '_' or '@' is part of an identifier or a key, not a name.
            glued = s > 0 and (text[s - 1].isdigit() or text[s - 1] in "_@/") or e < n and (
                text[e].isdigit() or text[e] in "_@")
            if glued or not (_is_cap(tok) or (cur and tok.lower() in _PARTICLES)):
                if cur:
                    runs.append(cur)
                    cur = []
                continue
            cur.append((s, e, tok))
            # A full stop after a word (not an initial, title or suffix) ends the sentence and the run.
            if tok.endswith(".") and len(tok) > 2 and _norm(tok) not in _TITLES and tok.lower() not in _SUFFIXES:
                runs.append(cur)
                cur = []
        if cur:
            runs.append(cur)
    return runs


def _tokens(words: str, base: int) -> list[tuple[int, int, str]]:
    """The words of a region as (start, end, word), offsets from ``base``."""
    if not words.isascii():
        return [(base + m.start(), base + m.end(), m.group(0)) for m in _TOKEN.finditer(words)]
    # An ASCII region is words joined by single spaces, and each of them is one token whole.
    out: list[tuple[int, int, str]] = []
    for tok in words.split(" "):
        end = base + len(tok)
        out.append((base, end, tok))
        base = end + 1
    return out


#: Words that, alone in a run, are never a name (``_split_run`` leaves no name words).
_NEVER_ALONE = _TITLES | _PARTICLES | _COMMON
#: Those words capitalised, with and without a full stop: a region that is one of them makes no run.
_CAPITALISED_NEVER_ALONE = frozenset(
    c for w in _NEVER_ALONE for c in (w[:1].upper() + w[1:], w[:1].upper() + w[1:] + ".")
    if c[:1].isalnum() and not c[:1].isdecimal() and " " not in c and "\u00a0" not in c
    and c.rstrip(".").lower() in _NEVER_ALONE
)


def _norm(tok: str) -> str:
    return tok.rstrip(".").lower()


def _split_run(run: list[tuple[int, int, str]]) -> tuple[list[tuple[int, int, str]], list[tuple[int, int, str]]]:
    """Separate leading titles/common words from the name words; return (titles, name words)."""
    titles: list[tuple[int, int, str]] = []
    i = 0
    while i < len(run):
        low = _norm(run[i][2])
        if low in _TITLES:
            titles.append(run[i])
        elif titles and low not in _PARTICLES:
            # After a title the next word is a name even when it is also a word ("Dr. French").
            break
        elif low in _PARTICLES or (
            low in _COMMON
            # A given name that is also a word ("April", "May") stays when a name word follows.
            and not (low in first_names() and i + 1 < len(run) and _norm(run[i + 1][2]) not in _COMMON)
        ):
            titles = []
        else:
            break
        i += 1
    words = run[i:]
    # Trailing particles are not part of a name; trailing ordinary words may be surnames
    # ("Min-jun Park", "Alex English", "Dr. King"), so they stay and are weighed instead.
    while words and _norm(words[-1][2]) in _PARTICLES:
        words = words[:-1]
    return titles, words[: MAX_NAME_TOKENS + 1]


_NAME_HEADER = re.compile(
    r"(?:^|[\s_-])(?:full[\s_-]?)?(?:name|names|nombre|nom|naam|imię|nome|vorname|nachname|surname|"
    r"first[\s_-]?name|last[\s_-]?name|given[\s_-]?name|family[\s_-]?name|customer|patient|employee|"
    r"contact|person|owner|author|member|cardholder|holder)(?:$|[\s_-])",
    re.IGNORECASE,
)
_NOT_PERSON_HEADER = re.compile(
    r"user|host|file|domain|server|product|company|org|project|app|item|file|street|city|bank|table|field|"
    r"column|model|service|team|id$|email|mail|phone",
    re.IGNORECASE,
)


#: Words one of which a header cell naming people contains (checked on the whole line first).
_HEADER_WORDS = ("name", "nombre", "nom", "naam", "imię", "nome", "customer", "patient", "employee", "contact",
                 "person", "owner", "author", "member", "holder")
_HEADER_WORD = re.compile("|".join(_HEADER_WORDS), re.IGNORECASE)
_DELIMITERS = (",", "\t", ";", "|")


def _may_be_header(line: str) -> bool:
    """Whether ``line`` holds a word a people column is headed with, and no digit."""
    if line.isascii():
        low = line.lower()
        return not any(c in low for c in "0123456789") and any(w in low for w in _HEADER_WORDS)
    return _HEADER_WORD.search(line) is not None and not any(ch.isdigit() for ch in line)


def csv_name_cells(text: str) -> list[tuple[int, int]]:
    """Cells under a header that names people (``name``, ``patient``, ``Nachname`` ...) in CSV-like text."""
    cells: list[tuple[int, int]] = []
    if "\n" not in text.strip("\n"):
        return cells  # a header needs a row under it
    lines = [(m.start(), m.group(0)) for m in re.finditer(r"[^\n]+", text)]
    i = 0
    while i < len(lines):
        start, line = lines[i]
        delim = next((d for d in _DELIMITERS if d in line), None)
        if delim is None or not _may_be_header(line):
            i += 1
            continue
        header = [c.strip().strip("\"'") for c in line.split(delim)]
        cols = [k for k, h in enumerate(header) if _NAME_HEADER.search(h) and not _NOT_PERSON_HEADER.search(h)]
        i += 1
        if not cols:
            continue
        while i < len(lines) and lines[i][1].count(delim) == line.count(delim):
            row_start, row = lines[i]
            parts: list[tuple[int, int]] = []
            pos = 0
            for part in row.split(delim):
                parts.append((pos, pos + len(part)))
                pos += len(part) + 1
            for k in cols:
                if k < len(parts):
                    a, b = parts[k]
                    cell = row[a:b]
                    lead = len(cell) - len(cell.lstrip(" \"'"))
                    trail = len(cell) - len(cell.rstrip(" \"'"))
                    if b - trail > a + lead:
                        cells.append((row_start + a + lead, row_start + b - trail))
            i += 1
    return cells


def score_names(text: str, csv_cells: list[tuple[int, int]]) -> list[NameSpan]:
    """Heuristic name candidates in ``text`` with their scores (before any NER)."""
    names = first_names()
    places = place_names()
    out: list[NameSpan] = []
    csv_set = set(csv_cells)
    consumed = 0
    # Whether a run was left out since the last span: the next run then has no name listed right before it.
    passed = False
    for run in _runs(text):
        if run[0][0] < consumed:
            continue
        if len(run) == 1:
            s, e, tok = run[0]
            low = _norm(tok)
            if low in _NEVER_ALONE:
                # A lone title, particle or ordinary word leaves no name words to weigh.
                continue
            if not csv_set and low not in names and _weightless(text, s, e, tok):
                # One word that is no given name, with no cue on either side and no column: it
                # cannot reach the band the model settles, let alone the threshold.
                passed = True
                continue
        titles, words = _split_run(run)
        suffix: list[tuple[int, int, str]] = []
        while words and _norm(words[-1][2]) in _SUFFIXES and len(words) > 1:
            suffix.insert(0, words[-1])
            words = words[:-1]
        if not words or len(words) > MAX_NAME_TOKENS:
            continue
        lows = [w[2].rstrip(".").lower() for w in words]
        if not titles and _COMMON.issuperset(lows):
            continue
        core_start, core_end = words[0][0], words[-1][1]
        if text[core_end - 1] == "." and len(words[-1][2]) > 2:
            core_end -= 1
        reasons: list[str] = []
        score = 0.0
        n_name_words = len(lows) if _PARTICLES.isdisjoint(lows) else sum(1 for lw in lows if lw not in _PARTICLES)
        if n_name_words >= 2:
            score += 0.3
            reasons.append("several capitalised words")
        if lows[0] in names:
            score += 0.35
            reasons.append("known given name")
        if titles:
            score += 0.6
            reasons.append(f"title {titles[-1][2]!r}")
        if suffix:
            score += 0.25
            reasons.append(f"suffix {suffix[-1][2]!r}")
        # A title is part of a full name ("Mrs. Sarah Le") but not of a bare surname ("Dr. King").
        span_start = titles[0][0] if titles and len(words) >= 2 else core_start
        before = text[max(0, (titles[0][0] if titles else core_start) - 40) : (titles[0][0] if titles else core_start)]
        cue = _cue_before(before)
        if cue is not None:
            score += cue[0]
            reasons.append(cue[1])
        end = suffix[-1][1] if suffix else core_end
        after = text[end : end + 40]
        if _after_cue(after):
            score += 0.3
            reasons.append("cue after")
        if (core_start, core_end) in csv_set or (span_start, end) in csv_set:
            score += 0.6
            reasons.append("column headed as names")
        if " ".join(lows) in places:
            score -= 0.8
            reasons.append("a place")
        if not _ORG_WORDS.isdisjoint(lows):
            score -= 0.6
            reasons.append("organisation or place word")
        # An ordinary word counts against a name, except in last place where surnames such
        # as Park, Brown or English sit.
        if len(lows) <= 2:
            common = int(lows[0] in _COMMON)  # the first word alone, or the one before the last
        else:
            common = sum(1 for lw in lows[:-1] if lw in _COMMON)
        if common and not titles:
            score -= 0.25 * common
            reasons.append("common word inside")
        if n_name_words == 1 and not titles and len(lows[0]) <= 2:
            score -= 0.3
        if n_name_words == 1 and not titles and (
            words[0][0] == 0 or text[max(0, words[0][0] - 2) : words[0][0]].strip() in (".", "!", "?", "")
        ):
            # A run at the start of a sentence may just be a capitalised ordinary word.
            score -= 0.2
        inverted = _inverted_name(text, words, end, cue)
        if inverted is not None:
            # "Okafor, Chidi" after a cue: surname, comma, given name(s).
            end = consumed = inverted
            score = max(score + 0.3, 0.8)
            reasons.append("surname, given name")
        prev = out[-1] if out and not passed else None
        passed = False
        if (prev is not None and prev.score >= NAME_THRESHOLD and span_start - prev.end <= _JOINER_CHARS
                and _JOINER.match(text[prev.end : span_start])):
            score += 0.25
            reasons.append("listed with another name")
        out.append(NameSpan(span_start, end, min(1.0, score), reasons, core_start, core_end))
    out.extend(_uncased_names(text))
    out.extend(_csv_only_names(text, csv_cells, out))
    return out


#: The last word of every cue phrase: a run whose previous word is none of them has no cue before it.
_CUE_LAST_WORDS = frozenset(p.rsplit(" ", 1)[-1] for p in _STRONG_CUES | _GREETINGS) | _WEAK_CUES


def _weightless(text: str, s: int, e: int, tok: str) -> bool:
    """Whether the one-word run ``tok`` at ``s``-``e`` has neither a cue before nor a cue after it.

    Such a word, when it is no given name and stands in no column headed as names, scores at
    most 0.25 (a name listed right before it): below the band handed to the model.
    """
    core_end = e - 1 if text[e - 1] == "." and len(tok) > 2 else e
    if _after_cue(text[core_end : core_end + 40]):
        return False
    # ``_cue_before`` looks the last one to three words up; every phrase it knows ends in one of
    # ``_CUE_LAST_WORDS``, so the last word alone rules a cue out.
    before = text[max(0, s - 40) : s]
    stripped = before.rstrip(" \t:,.-")
    if not stripped or len(before) - len(stripped) > 3:
        return True
    last = stripped.rsplit(None, 1)
    return not last or last[-1].lower().strip(_WORD_EDGE) not in _CUE_LAST_WORDS


_NAME_WORD = r"[^\W\d_]+(?:['’-][^\W\d_]+)*\.?"
_INVERTED_TAIL = re.compile(rf", ({_NAME_WORD}(?: {_NAME_WORD})?)(?=[;|)\n]|$| \()")


def _inverted_name(text: str, words: list[tuple[int, int, str]], end: int,
                   cue: tuple[float, str] | None) -> int | None:
    """Where "Surname, Given" ends, when a one-word run after a strong cue is followed by one."""
    if len(words) != 1 or cue is None or cue[0] < 0.4:
        return None
    m = _INVERTED_TAIL.match(text, end)
    if m is None or not all(w[0].isupper() for w in m.group(1).split()):
        return None
    return m.end(1)


#: Scripts without letter case (Arabic, Hebrew, Devanagari, Thai, kana, Han, Hangul): a name
#: in them is only recognisable by a cue.
_UNCASED_WORD = (
    "[\u0590-\u05ff\u0600-\u06ff\u0900-\u097f\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af]{1,12}"
)
_UNCASED = re.compile(rf"{_UNCASED_WORD}(?: {_UNCASED_WORD}){{0,2}}")
_CELL_NAME = re.compile(r"[^\W\d_]+(?:['’.-][^\W\d_]*)*(?: [^\W\d_]+(?:['’.-][^\W\d_]*)*){0,4}")


def _uncased_names(text: str) -> list[NameSpan]:
    out: list[NameSpan] = []
    if text.isascii():
        return out
    for m in _UNCASED.finditer(text):
        cue = _cue_before(text[max(0, m.start() - 40) : m.start()])
        after = _after_cue(text[m.end() : m.end() + 40])
        if (cue is None or cue[0] < 0.4) and not after:
            continue
        score = 0.3 + (cue[0] if cue else 0.0) + (0.3 if after else 0.0)
        out.append(NameSpan(m.start(), m.end(), min(1.0, score), ["name in an uncased script after a cue"],
                            m.start(), m.end()))
    return out


def _csv_only_names(text: str, cells: list[tuple[int, int]], found: list[NameSpan]) -> list[NameSpan]:
    """Name cells no capitalised run covered (lower-case or uncased-script names in a name column)."""
    out: list[NameSpan] = []
    for a, b in cells:
        if any(f.start < b and a < f.end for f in found) or not _CELL_NAME.fullmatch(text, a, b):
            continue
        out.append(NameSpan(a, b, 0.7, ["column headed as names"], a, b))
    return out


def apply_ner(text: str, spans: list[NameSpan], model: NERModel, max_segment: int,
              taken: list[tuple[int, int]] | None = None) -> list[NameSpan]:
    """Let the NER model settle undecided runs (those not inside other findings, ``taken``)."""
    lo, hi = UNDECIDED
    taken = taken or []
    undecided = [s for s in spans if lo <= s.score < hi
                 and not any(a < s.core_end and s.core_start < b for a, b in taken)]
    if not undecided:
        return spans
    # Only the sentences or lines holding undecided runs are sent to the model.
    segments: list[tuple[int, int]] = []
    for s in undecided:
        radius = min(NER_CONTEXT_CHARS, max_segment // 2)
        a = max(text.rfind("\n", 0, s.start) + 1, s.start - radius)
        b = text.find("\n", s.end)
        b = min(len(text) if b < 0 else b, s.end + radius)
        # Cut at spaces so the model never sees half a word.
        if a > 0 and text[a - 1] not in " \n":
            a = max(a, text.find(" ", a, s.start) + 1)
        if b < len(text) and text[b] not in " \n":
            cut = text.rfind(" ", s.end, b)
            b = cut if cut > 0 else b
        if segments and a <= segments[-1][1]:
            segments[-1] = (segments[-1][0], max(b, segments[-1][1]))
        else:
            segments.append((a, b))
    ents: list[tuple[int, int, str]] = []
    for (a, _b), found in zip(segments, model.entities([text[a:b] for a, b in segments]), strict=True):
        ents.extend((a + s, a + e, label) for s, e, label in found)
    persons = [(s, e) for s, e, label in ents if label == "PERSON"]
    others = [(s, e) for s, e, label in ents if label in ("ORG", "GPE", "LOC", "FAC", "PRODUCT", "WORK_OF_ART")]
    for sp in undecided:
        if any(s < sp.core_end and sp.core_start < e for s, e in persons):
            sp.score = min(1.0, sp.score + 0.5)
            sp.reasons.append("NER: person")
        elif any(s < sp.core_end and sp.core_start < e for s, e in others):
            sp.score -= 0.15
            sp.reasons.append("NER: organisation or place")
    return spans
