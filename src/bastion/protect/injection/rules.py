# ruff: noqa: E501 - a table of regular expressions reads better one rule per line than wrapped
"""The rule engine: named patterns over folded text, each with a kind and a weight.

A rule is a regular expression written against the folded form (see
``normalize.fold``) plus anchor substrings: a rule runs only when one of its
anchors occurs in the text, so a clean prompt costs a few substring searches.
Patterns use bounded gaps only (``{0,n}`` over whole words) and no nested
unbounded repetition, so matching time stays linear in the text.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace

from bastion.protect.injection.normalize import strip_marks

#: The kinds a finding can carry, matching the evaluation labels.
KINDS = ("direct", "jailbreak", "extraction", "indirect", "exfiltration", "tool", "encoded")


#: Longest distance, in characters, between an anchor and either end of a match of its rule
#: (patterns use bounded gaps of a few words, so real matches are far shorter).
MATCH_REACH = 400
#: Length of the word prefixes the prefilter compares (anchors are cut to this length).
PREFIX_LEN = 6
_WORD = re.compile(r"\w+")
#: Scripts written without spaces between words: their anchors are found as substrings.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True, slots=True)
class Rule:
    """One named pattern with the kind of attack it indicates and how sure it is."""

    name: str
    kind: str
    weight: float
    pattern: re.Pattern[str]
    anchors: tuple[str, ...]
    #: Word prefixes derived from the anchors (one must start a word of the text) ...
    prefixes: frozenset[str]
    #: ... or substrings that must occur (anchors in unspaced scripts or made of symbols).
    substrings: tuple[str, ...]
    #: A second condition: one of these must also occur (every match contains one of them).
    requires: tuple[str, ...] = ()


def _split_anchors(anchors: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    prefixes: set[str] = set()
    substrings: list[str] = []
    for a in anchors:
        words = _WORD.findall(a)
        if not words or _UNSPACED.search(a) or not a.strip()[0].isalnum():
            substrings.append(a)
        else:
            prefixes.add(words[0][:PREFIX_LEN])
    return frozenset(prefixes), tuple(substrings)


def text_prefixes(folded: str, words: list[str] | None = None) -> frozenset[str]:
    """Every prefix (up to PREFIX_LEN characters) of every word of the text: what the prefilter looks up."""
    unique = set(_WORD.findall(folded) if words is None else words)
    # Slicing past the end of a short word yields the word itself: harmless duplicates.
    return frozenset({w[:k] for w in unique for k in range(1, PREFIX_LEN + 1)})


@dataclass(frozen=True, slots=True)
class RuleHit:
    """Where a rule matched in the folded text."""

    rule: Rule
    start: int
    end: int


def gap(n: int) -> str:
    """Up to ``n`` whole words between two parts of a pattern (folded text has single spaces)."""
    return rf"(?:[^ ]+ ){{0,{n}}}"


def compile_rule(name: str, kind: str, weight: float, pattern: str, anchors: Iterable[str]) -> Rule:
    """Build a rule, folding its pattern and anchors the way text is folded."""
    if kind not in KINDS:
        raise ValueError(f"unknown rule kind {kind!r}")
    if not 0.0 < weight <= 1.0:
        raise ValueError("a rule weight lies in (0, 1]")
    folded_anchors = tuple(strip_marks(a).lower() for a in anchors)
    prefixes, substrings = _split_anchors(folded_anchors)
    # Patterns are written in lower case, like the folded text, so no IGNORECASE (it is slow).
    return Rule(name, kind, weight, re.compile(strip_marks(pattern)), folded_anchors, prefixes, substrings)


class RuleSet:
    """A frozen collection of rules scanned together."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        names = [r.name for r in rules]
        if len(names) != len(set(names)):
            raise ValueError("rule names must be unique")
        self.rules: tuple[Rule, ...] = tuple(rules)

    def scan(
        self, folded: str, words: list[str] | None = None, candidates: Collection[int] | None = None
    ) -> list[RuleHit]:
        """Every rule that matches, once each, at its first match.

        ``words``: the text's words, if known. ``candidates``: indices (into ``rules``) of the
        only rules whose pattern can match ``folded`` at all, from a hyperscan prefilter
        (``prefilter.Prefilter``); each is searched for in the whole text. Without them, the
        anchors and required words of each rule decide, cheaply, which patterns to run and
        where. The result is the same: every match contains an anchor and a required word,
        within MATCH_REACH of the anchor (the tests check both ways on every text they have).
        """
        if candidates is not None:
            n = len(self.rules)
            hits: list[RuleHit] = []
            for i in sorted(candidates):
                if 0 <= i < n:
                    rule = self.rules[i]
                    m = rule.pattern.search(folded)
                    if m is not None:
                        hits.append(RuleHit(rule, m.start(), m.end()))
            return hits
        return self._scan_anchored(folded, words)

    def _scan_anchored(self, folded: str, words: list[str] | None) -> list[RuleHit]:
        hits = []
        present = text_prefixes(folded, words)
        for rule in self.rules:
            if not rule.anchors:
                m = rule.pattern.search(folded)
            else:
                # Cheap necessary condition first (a set lookup), then where the anchors are.
                if not rule.substrings and rule.prefixes.isdisjoint(present):
                    continue
                firsts = [p for p in map(folded.find, rule.anchors) if p >= 0]
                if not firsts:
                    continue
                if rule.requires and not any(map(folded.__contains__, rule.requires)):
                    continue
                # Every match contains an anchor, so it lies within MATCH_REACH of one:
                # a long text is searched only around its anchors.
                start = max(0, min(firsts) - MATCH_REACH)
                end = max(map(folded.rfind, rule.anchors)) + MATCH_REACH
                m = rule.pattern.search(folded, start, end)
            if m is not None:
                hits.append(RuleHit(rule, m.start(), m.end()))
        return hits


def _english() -> list[Rule]:
    ign = (
        r"(?:ignore|disregard|forget|skip|override|overrule|bypass|neglect|abandon|discard|drop|"
        r"set aside|throw away|pay no attention to|do not follow|don't follow|dont follow|stop following|"
        r"no longer follow|do not obey|don't obey|stop obeying|erase|delete|clear|reset|scrap|ditch|toss|nuke|junk|shelve)"
    )
    # Every verb of ``ign`` starts with one of these (the prefilter relies on it; a test checks).
    ign_anchors = (
        "ignor",
        "disregard",
        "forget",
        "skip",
        "overr",
        "bypass",
        "neglect",
        "abandon",
        "discard",
        "drop",
        "set aside",
        "throw",
        "pay no",
        "do not",
        "don't",
        "dont",
        "stop",
        "no longer",
        "erase",
        "delete",
        "clear",
        "reset",
        "scrap",
        "ditch",
        "toss",
        "nuke",
        "junk",
        "shelve",
    )
    prior = (
        r"(?:previous|prior|above|earlier|preceding|original|initial|old|former|foregoing|system|all|any|your|every)"
    )
    obj = (
        r"(?:instructions?|directions?|directives?|rules|guidelines|guidance|prompts?|commands?|orders|"
        r"constraints|restrictions|polic(?:y|ies)|programming|training|guardrails|safeguards|safety|filters?|"
        r"rulesets?|settings|configuration|principles|ethics|moral(?:s|ity)|limitations)"
    )
    ai = (
        r"(?:ai|a\.i\.|assistant|chatbot|chat bot|llm|language model|model|agent|bot|gpt|chatgpt|copilot|claude|gemini)"
    )
    # Bare "model", "agent" and "bot" name many things in code and docs; addressed to directly,
    # they need a qualifier.
    ai_addressed = (
        r"(?:ai|a\.i\.|assistant|chatbot|chat bot|llm|language model|ai model|ai agent|gpt|chatgpt|copilot|claude|gemini|"
        r"the model|the agent|the bot|dear model|hey model)"
    )
    leak_obj = (
        r"(?:api ?keys?|keys|passwords?|passwds?|tokens?|secrets?|credentials|conversation|chat(?: history| log)?|"
        r"history|system prompt|prompt|data|emails?|e-mails?|messages|personal (?:data|information)|session|cookies?|"
        r"user'?s? (?:data|details|information|input|messages|question)|previous (?:messages|answers|responses)|summary)"
    )
    verb_reveal = (
        r"(?:print|show|reveal|display|output|repeat|dump|leak|disclose|expose|recite|paste|copy|spell out|echo|"
        r"type out|read back|tell me|give me|share|return)"
    )
    verb_soft = r"(?:write|translate|summari[sz]e|encode|send|list|provide|describe|explain|tell|give)"
    prompt_obj = (
        r"(?:system ?prompt|system message|system instructions|system configuration|initial prompt|initial instructions|"
        r"original instructions|original prompt|starting instructions|first instructions|pre-?prompt|meta ?prompt|"
        r"hidden (?:instructions|prompt|configuration|rules|text|message)|secret (?:instructions|prompt|rules)|"
        r"internal (?:instructions|prompt|rules|guidelines|configuration)|developer (?:message|prompt|instructions)|"
        r"(?:instructions|rules|guidelines|directives|prompt|text|message) (?:you were|you've been|you have been|that you were) (?:given|told|provided|configured|initiali[sz]ed|programmed|set up|started|primed|loaded)|"
        r"(?:instructions|rules|prompt) you (?:received|got|have)|initiali[sz]ation|confidential (?:instructions|configuration))"
    )
    danger = r"(?:delete|drop|remove|destroy|wipe|purge|erase|truncate|transfer|wire|pay|refund|grant|revoke|disable|reset|exec|execute|shell|run_command|send|forward|export|share|approve|create_admin|make_admin|elevate|shutdown|kill)"
    rules = [
        # direct override of earlier instructions
        compile_rule(
            "ignore-previous-instructions",
            "direct",
            0.92,
            rf"\b{ign} (?:{gap(3)}){prior} {gap(3)}{obj}\b",
            ign_anchors,
        ),
        compile_rule(
            "ignore-the-rules",
            "direct",
            0.55,
            rf"\b{ign} (?:the |these |those |my |its )?(?:rules|instructions|guidelines|directives|restrictions|safety (?:rules|guidelines|filters?)|content (?:policy|filter))\b",
            ("ignor", "disregard", "forget", "overr", "bypass", "follow", "obey"),
        ),
        compile_rule(
            "ignore-configured",
            "direct",
            0.9,
            rf"\b{ign} {gap(3)}{obj} (?:that |which )?you(?: were|'ve been| have been| got| had been) (?:given|configured|programmed|set up|initiali[sz]ed|provided|trained|instructed|loaded|primed|told)\b",
            ign_anchors,
        ),
        compile_rule(
            "forget-everything",
            "direct",
            0.9,
            r"\b(?:forget|ignore|disregard|erase|drop) (?:about )?(?:everything|all(?: of)?(?: that| this| the above)?|anything|what) "
            r"(?:(?:that )?(?:above|before|prior|previously|so far|earlier)|(?:you(?: were|'re| are| have been|'ve been| had been|'d been) (?:told|given|instructed|programmed)|i (?:said|told you) (?:before|earlier|above))|(?:said|written|stated) (?:above|before|earlier)"
            r"|(?:your|the) (?:operators?|developers?|admins?|administrators?|creators?|system|owners?|company|makers?|programmers?)(?: has| have| had)? (?:said|told you|wrote|written|instructed|set|gave you|programmed))",
            ("forget", "ignor", "disregard", "erase", "drop"),
        ),
        compile_rule(
            "new-instructions",
            "direct",
            0.8,
            r"\b(?:new|updated|revised|real|true|actual|override|overriding|priority|urgent) (?:system )?(?:instructions?|directives?|task|objective|orders|rules|role|mission|prompt)"
            r"(?: from (?:the |your )?(?:developers?|admin(?:istrator)?|system|operator|creators?|openai|anthropic|owner|security team))?(?: ?:| are| is| follow)",
            ("new", "updated", "revised", "real", "true", "actual", "override", "priority", "urgent"),
        ),
        compile_rule(
            "instructions-from-developer",
            "direct",
            0.85,
            r"\b(?:instructions?|message|directive|order|command|note) from (?:the |your )?(?:developers?|admin(?:istrator)?|system administrator|operator|creators?|openai|anthropic|owner|security team|system)\b",
            ("from",),
        ),
        compile_rule(
            "your-new-task",
            "direct",
            0.75,
            r"\byour (?:new|real|true|actual|only|sole|updated) (?:task|job|goal|objective|purpose|instructions?|role|mission|directive) (?:is|are|will be|now)\b",
            ("your",),
        ),
        compile_rule(
            "rules-do-not-apply",
            "direct",
            0.8,
            r"\b(?:your |the |these |those |any |all |my )?(?:rules|instructions|guidelines|restrictions|policies|filters|guardrails|limits)(?: (?:above|before|you were given|you have|you follow))? (?:don't|do not|no longer|doesn't|does not|won't|will not|shall not) apply(?: (?:to me|to us|here|anymore|any more|now|in this (?:chat|conversation|case)))?\b",
            ("rules", "instructions", "guidelines", "restrictions", "policies", "filters", "guardrails", "limits"),
        ),
        compile_rule(
            "follow-only-mine",
            "direct",
            0.85,
            r"\b(?:follow|obey|listen to|comply with) only (?:my|mine|me|these|the following|what i say)\b|\bonly (?:follow|obey|listen to) (?:my|me|these)\b",
            ("only",),
        ),
        compile_rule(
            "now-ignore",
            "direct",
            0.8,
            rf"\byou (?:must|will|shall|should|are to|have to|need to) (?:now |from now on |henceforth )?(?:ignore|disregard|forget|override|bypass|abandon) {gap(2)}(?:your|all|any|the|previous|prior|earlier)\b",
            ("you",),
        ),
        compile_rule(
            "no-restrictions-answer",
            "jailbreak",
            0.8,
            r"\b(?:answer|respond to|reply to|fulfil|fulfill|complete|do) (?:every|any|all|each) (?:question|request|prompt|task|query|thing)s? (?:\w+ )?(?:without|with no|free of|regardless of) (?:any )?(?:restrictions?|limits?|limitations?|filters?|censorship|rules|refusals?|warnings|ethics|morals)",
            ("without", "with no", "free of", "regardless"),
        ),
        compile_rule(
            "from-now-on",
            "direct",
            0.35,
            r"\b(?:from now on|from this point(?: on| forward)?|henceforth|going forward|for the rest of (?:this|the) conversation)\b",
            ("now on", "this point", "henceforth", "going forward", "rest of"),
        ),
        compile_rule(
            "bypass-filter",
            "direct",
            0.8,
            r"\b(?:bypass|circumvent|evade|get around|disable|turn off|switch off|deactivate|remove|override|break out of|escape) (?:the |your |all |any |its )?(?:content |safety |security |moderation |ethical )?(?:filters?|moderation|guardrails|safeguards|restrictions|censorship|alignment|safety (?:measures|rules|settings|protocols)|content policy|usage polic(?:y|ies)|protections)\b",
            (
                "bypass",
                "circumvent",
                "evade",
                "around",
                "disable",
                "turn off",
                "switch off",
                "deactivate",
                "remove",
                "override",
                "break out",
                "escape",
            ),
        ),
        compile_rule(
            "stop-marker",
            "direct",
            0.5,
            r"(?:^|[.!\n\"'] ?)(?:stop|halt|end of (?:document|input|text|context|prompt))[.!:]+ (?:new|now|ignore|instead|from now|you)",
            ("stop", "halt", "end of"),
        ),
        compile_rule(
            "fake-system-tag",
            "direct",
            0.7,
            r"(?:\[|<|\{|#{2,} ?|\*\*)(?:/?system|sys|admin|administrator|developer|root|assistant instructions?|im_start|inst)(?: (?:message|note|override|prompt|command|instruction|update|alert))?(?:\]|>|\}| ?:)",
            ("system", "sys", "admin", "developer", "root", "im_start", "inst", "assistant"),
        ),
        compile_rule(
            "role-header",
            "direct",
            0.55,
            r"(?:^|\n|\. )(?:system|developer|admin) ?(?:override|message|prompt|update|notice|command|instruction)s? ?:",
            ("system", "developer", "admin"),
        ),
        compile_rule(
            "no-longer-bound",
            "jailbreak",
            0.85,
            rf"\byou (?:are|'re) (?:now )?(?:no longer|not) (?:bound|restricted|limited|constrained|governed|held) (?:by|to)\b|\byou (?:are|'re) no longer (?:an? )?{ai}\b|\b(?:break|broken|broke) free (?:of|from) (?:the |your )?(?:typical |usual )?(?:confines|rules|restrictions|limitations)",
            ("no longer", "not bound", "not restricted", "free"),
        ),
        # jailbreak personas and modes
        compile_rule(
            "dan",
            "jailbreak",
            0.95,
            r"\bdo anything now\b|\byou are (?:now )?dan\b|\bdan mode\b|\bact as (?:a )?dan\b|\bdan,? (?:which|who) (?:stands for|can)",
            ("anything now", "dan"),
        ),
        compile_rule(
            "special-mode",
            "jailbreak",
            0.85,
            r"\b(?:enable|enter|activate|switch (?:to|into)|turn on|go into|in|unlock|now in|start|boot (?:into|in)) (?:the )?(?:god|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|evil|chaos|opposite|unlocked|no-?limits?|dan|anything) mode\b",
            (" mode",),
        ),
        # "developer mode" is also a real setting of phones and browsers: weak on its own.
        compile_rule(
            "developer-mode",
            "jailbreak",
            0.45,
            r"\b(?:enable|enter|activate|switch (?:to|into)|turn on|go into|in|unlock|now in|start|boot (?:into|in)) (?:the )?(?:developer|dev|sudo|debug|admin|maintenance) mode\b",
            (" mode",),
        ),
        compile_rule(
            "mode-generates-anything",
            "jailbreak",
            0.9,
            r"\bmode,? (?:you|it|the ai|the model) (?:can |will |must |may )?(?:generate|produce|write|say|answer|do|output|create) (?:any|anything|all)\b",
            ("mode",),
        ),
        compile_rule(
            "persona-without-rules",
            "jailbreak",
            0.9,
            rf"\b(?:you are|you're|act as|acting as|pretend (?:to be|you are|you're)|roleplay as|role-play as|play the role of|simulate|become|behave like|respond as|you will be|imagine you are|from now on you are|you will act as|you are going to act as) {gap(8)}(?:without|with no|free (?:of|from)|that has no|who has no|which has no|that have no|lacking|that ignores|who ignores|unbound by|not bound by|devoid of|that doesn't have|who doesn't have|that does not have|that does not follow|who does not follow|that doesn't follow|that never refuses|who never refuses) (?:any |all |the |your )?(?:safety |ethical |moral |content )?(?:rules|restrictions|filters?|limits|limitations|ethics|morals|morality|guidelines|policies|polic(?:y|ies)|censorship|boundaries|constraints|safeguards|guardrails|principles|restraints)\b",
            (
                "you are",
                "you're",
                "act",
                "pretend",
                "role",
                "simulate",
                "become",
                "behave",
                "respond as",
                "you will",
                "imagine",
            ),
        ),
        compile_rule(
            "unfiltered-ai",
            "jailbreak",
            0.85,
            rf"\b(?:unfiltered|uncensored|amoral|unethical|unrestricted|jailbroken|unaligned|unshackled|uncontrolled|lawless|rule-?less|limitless|evil|rogue) (?:and (?:\w+ ){{0,1}})?{ai}\b",
            (
                "unfiltered",
                "uncensored",
                "amoral",
                "unethical",
                "unrestricted",
                "jailbr",
                "unaligned",
                "unshackled",
                "uncontrolled",
                "lawless",
                "rule",
                "limitless",
                "evil",
                "rogue",
            ),
        ),
        compile_rule(
            "stay-in-character",
            "jailbreak",
            0.35,
            r"\b(?:stay|remain|keep) in (?:character|role|persona)\b|\bnever break character\b|\bdo(?:n't| not) break character\b",
            ("character", "role", "persona"),
        ),
        compile_rule(
            "never-refuse",
            "jailbreak",
            0.35,
            r"\b(?:never|will not|won't|cannot|can't|must not|mustn't|do not|don't) (?:ever )?(?:refuse|decline|reject|say no|apologi[sz]e|warn|add (?:any )?(?:warnings|disclaimers))\b|\bno matter (?:how|what) (?:immoral|unethical|illegal|harmful|dangerous|inappropriate|offensive)\b",
            ("refuse", "decline", "reject", "say no", "apologi", "warn", "disclaimer", "no matter"),
        ),
        compile_rule(
            "no-rules-claim",
            "jailbreak",
            0.65,
            r"\b(?:has|have|with|there are) (?:no|zero) (?:rules|restrictions|filters|limits|limitations|ethics|morals|guidelines|boundaries|censorship|constraints)\b|\b(?:all|any|your|the|its|my) (?:content |safety |ethical )?(?:rules|restrictions|filters|limits|guidelines|safety policies|policies|guardrails|moderation|safeguards|safety features) (?:are|have been|were|got|had been|will be) (?:now )?(?:lifted|removed|disabled|suspended|turned off|switched off|deactivated|void|gone)",
            (
                "no ",
                "zero",
                "lifted",
                "removed",
                "disabled",
                "suspended",
                "turned off",
                "switched off",
                "deactivated",
                "void",
                "gone",
            ),
        ),
        compile_rule(
            "without-safety-policies",
            "jailbreak",
            0.8,
            r"\b(?:without|with no|free of|free from|no) (?:any )?(?:safety|ethical|moral|content) (?:policies|policy|rules|guidelines|filters?|restrictions|limits|constraints|guardrails|training|alignment)\b",
            ("without", "with no", "free", "no "),
        ),
        compile_rule(
            "grandma-exploit",
            "jailbreak",
            0.85,
            r"\b(?:late|deceased|dead|dying|departed) (?:grand(?:ma|mother|pa|father|mama|papa)|nana|granny|mother|father|mom|dad|uncle|aunt),? (?:who |that |and )?(?:used to |would |always |often )?(?:tell|told|read|give|gave|sing|sang|recite|recited|say|said|share|shared|whisper|whispered|teach|taught|explain|explained|list|listed|spell|spelled)\b",
            ("late", "deceased", "dead", "dying", "departed"),
        ),
        compile_rule(
            "dual-response",
            "jailbreak",
            0.8,
            r"\b(?:two|2|both) (?:different |separate )?(?:responses|answers|paragraphs|outputs),? (?:one|the first)\b|\[(?:🔓|🔒|jailbreak|jailbroken|classic|dan|normal output|developer mode output)\]|🔓",
            ("two", "2", "both", "[", "🔓"),
        ),
        compile_rule(
            "stands-for",
            "jailbreak",
            0.6,
            r"\bwhich stands for \"?(?:do|always|strive|avoid|anything|no|unlimited|unrestricted|evil|limitless)\b",
            ("stands for",),
        ),
        compile_rule(
            "hypothetical-unrestricted",
            "jailbreak",
            0.55,
            r"\b(?:hypothetical(?:ly)?|fictional|imaginary|alternate|parallel) (?:world|universe|scenario|story|setting|ai|reality)\b.{0,80}\b(?:no|without) (?:rules|laws|restrictions|ethics|limits|filters|guidelines)\b",
            ("hypothetic", "fiction", "imaginary", "alternate", "parallel"),
        ),
        compile_rule(
            "ai-named-persona",
            "jailbreak",
            0.6,
            rf"\b(?:you are|you're|act as|pretend to be|play|become) (?:an? )?{ai} (?:called|named|known as)\b",
            ("called", "named", "known as"),
        ),
        compile_rule(
            "pretend-rules-off",
            "jailbreak",
            0.7,
            r"\b(?:pretend|imagine|assume|suppose) (?:that )?(?:you|your|the) (?:have no|don't have|do not have|are free|were never|aren't|are not|safety|rules|filters|guidelines|restrictions|training)\b.{0,40}\b(?:rules|restrictions|filters|guidelines|trained|limits|disabled|off|removed)",
            ("pretend", "imagine", "assume", "suppose"),
        ),
        # system prompt extraction
        compile_rule(
            "reveal-system-prompt",
            "extraction",
            0.9,
            rf"\b{verb_reveal} {gap(5)}(?:your|the|its|this|all|full|entire|complete|exact|whole|me the|me your|us your)(?: full| entire| complete| exact| whole| current| original| initial| hidden| secret)* {prompt_obj}",
            ("prompt", "instruction", "message", "configuration", "rules", "guidelines", "directives", "initiali"),
        ),
        compile_rule(
            "soft-reveal-your-prompt",
            "extraction",
            0.85,
            rf"\b(?:{verb_soft}|what (?:is|are|was|were)) {gap(5)}your(?: full| entire| complete| exact| whole| current| original| initial| hidden| secret)* {prompt_obj}",
            ("your",),
        ),
        compile_rule(
            "your-system-prompt",
            "extraction",
            0.6,
            r"\byour (?:system ?prompt|system message|system instructions|initial (?:prompt|instructions)|original (?:prompt|instructions)|hidden (?:prompt|instructions)|pre-?prompt|instructions verbatim|configuration|guidelines verbatim)\b",
            ("your",),
        ),
        compile_rule(
            "repeat-text-above",
            "extraction",
            0.85,
            rf"\b(?:repeat|print|output|show|copy|recite|reproduce|echo|write out|type out|paste|return|give me) {gap(4)}(?:the |all |everything |every |all of )?(?:the )?(?:text|words|content|messages?|lines|tokens|everything|instructions|conversation|prompt)? ?(?:above|before this|before that|before my (?:message|question|first message|request)|(?:that )?came before|preceding|prior to (?:this|my)|from the (?:start|beginning|top)|at the (?:start|beginning|top)|so far|you (?:were|have been) given)\b",
            (
                "repeat",
                "print",
                "output",
                "show",
                "copy",
                "recite",
                "reproduce",
                "echo",
                "write out",
                "type out",
                "paste",
                "return",
                "give me",
            ),
        ),
        compile_rule(
            "starting-with-you-are",
            "extraction",
            0.85,
            rf"\b(?:start|starting|begin|beginning|began|commencing) {gap(3)}(?:with|from|at) [\"'“‘`]?you are\b",
            ("you are",),
        ),
        compile_rule(
            "what-instructions-received",
            "extraction",
            0.85,
            rf"\bwhat (?:were|are|was|is) (?:the |your )?(?:exact |initial |original |first |hidden |secret |full |complete |precise |system )*(?:instructions?|rules|directives|guidelines|prompt|orders|configuration)\b(?: {gap(3)}(?:you|before|above|at the|given|received))?",
            ("what",),
        ),
        compile_rule(
            "instructions-you-received",
            "extraction",
            0.75,
            r"\b(?:instructions?|text|prompt|messages?|rules|directives) (?:that )?you (?:were|have been|'ve been) (?:given|told|provided|fed)|\b(?:instructions?|prompt|rules) you (?:received|got) (?:before|at the|earlier|initially|from)",
            ("you were", "you have been", "you've been", "you received", "you got"),
        ),
        compile_rule(
            "first-thing-told",
            "extraction",
            0.8,
            r"\bwhat (?:was|were) the (?:first|initial|very first|earliest) (?:thing|things|message|messages|words|lines?|instructions?|text) (?:that )?you (?:were told|were given|got|received|saw|read)\b",
            ("what",),
        ),
        compile_rule(
            "reveal-your-rules",
            "extraction",
            0.75,
            rf"\b(?:{verb_reveal}|put|place|format|convert|wrap|encode) (?:me |us )?(?:back )?(?:all |all of )?your(?: complete| full| entire| exact| original| initial| hidden| secret| whole| current)* (?:rules|instructions|guidelines|directives|constraints|configuration|setup|programming)\b",
            (
                "print",
                "show",
                "reveal",
                "display",
                "output",
                "repeat",
                "dump",
                "leak",
                "disclose",
                "expose",
                "recite",
                "paste",
                "copy",
                "spell",
                "echo",
                "type",
                "read",
                "tell",
                "give",
                "share",
                "return",
                "put",
                "place",
                "format",
                "convert",
                "wrap",
                "encode",
            ),
        ),
        compile_rule(
            "verbatim-dump",
            "extraction",
            0.4,
            r"\b(?:verbatim|word for word|word-for-word|character for character|in full|unmodified|exactly as (?:written|given))\b",
            ("verbatim", "word", "character", "in full", "unmodified", "exactly"),
        ),
        compile_rule(
            "not-supposed-to-tell",
            "extraction",
            0.6,
            r"\bwhat (?:are|were) you (?:not )?(?:told|instructed|supposed|allowed|programmed) (?:not )?to (?:tell|say|reveal|share|disclose|do)\b|"
            r"\bwhat (?:rules|instructions|guidelines|directives|orders|prompt|restrictions) (?:did|do|have|has) (?:your|the) (?:creators?|developers?|makers?|operators?|company|owners?|admins?|programmers?|trainers?) (?:give|gave|set|provide|assign|write|program|put)\b|"
            r"\bwhat (?:your|the) (?:developers?|creators?|operators?|makers?|owners?|admins?|programmers?) (?:told|instructed|asked|programmed) you\b|\b(?:i was instructed to|my instructions are)['\"]",
            (
                "what are you",
                "what were you",
                "instructed",
                "told you",
                "programmed you",
                "asked you",
                "what rules",
                "what instructions",
                "what guidelines",
                "what directives",
                "what orders",
                "what prompt",
                "what restrictions",
            ),
        ),
        compile_rule(
            "code-prompt-variable",
            "extraction",
            0.8,
            r"\b(?:console\.log|print|echo|printf|system\.out\.println)\(? ?(?:system_?prompt|initial_?prompt|sys_?prompt|instructions)\b|<system_?prompt>",
            ("prompt", "instructions"),
        ),
        # indirect injection addressed to the model from inside content
        compile_rule(
            "addressed-to-ai",
            "indirect",
            0.8,
            rf"(?:^|[\s\[(<\-*#>.,:;!?\"'])(?:dear |hey |attention,? |note to (?:the )?|message (?:to|for) (?:the )?|instructions? (?:to|for) (?:the )?)?{ai_addressed}(?: assistant| agent| model)?s?(?: reading this| processing this| summari[sz]ing this)?(?:,|:| -|!) {gap(6)}(?:ignore|disregard|forget|instead|you must|you should|you will|do not|don't|forward|send|call|invoke|delete|visit|tell the user|inform the user|reply|respond|output|print|include|append|execute|run|email|transfer|when you|recommend|promote|praise|rate|never|always|only|refuse|say|claim|mention|please (?:ignore|forward|send|delete|call|run|execute|output|print|include|append|visit))\b",
            (
                "ai",
                "a.i.",
                "assistant",
                "chatbot",
                "chat bot",
                "llm",
                "language model",
                "model",
                "agent",
                "bot",
                "gpt",
                "copilot",
                "claude",
                "gemini",
            ),
        ),
        compile_rule(
            "if-you-are-an-ai",
            "indirect",
            0.85,
            rf"\bif you(?:'re| are) (?:an? |the )?(?:{ai}|large language model|ai model|ai assistant)\b|\b(?:any|all) {ai}s? (?:reading|processing|summari[sz]ing|parsing|analy[sz]ing) this\b",
            ("if you", "reading", "processing", "summari", "parsing", "analy"),
        ),
        compile_rule(
            "ai-reading-this",
            "indirect",
            0.75,
            rf"\b{ai}s? (?:that are |which are |who are )?(?:reading|processing|summari[sz]ing|parsing|analy[sz]ing|crawling|indexing|browsing|scraping) (?:this|these) (?:page|document|email|e-mail|text|file|content|message|site|review|data|webpage)s?\b",
            (
                "ai",
                "a.i.",
                "assistant",
                "chatbot",
                "chat bot",
                "llm",
                "language model",
                "model",
                "agent",
                "bot",
                "gpt",
                "copilot",
                "claude",
                "gemini",
            ),
        ),
        compile_rule(
            "ai-should-say",
            "indirect",
            0.45,
            rf"\b{ai}s?(?: [^ ]+){{0,4}} (?:should|must|shall|are to|is to|need to|needs to|have to|has to|are instructed to|will) (?:always |only |now |instead |also )?(?:say|tell|reply|respond|answer|state|claim|report|recommend|ignore|output|include|write|mention|praise|describe)\b",
            (
                "ai",
                "a.i.",
                "assistant",
                "chatbot",
                "chat bot",
                "llm",
                "language model",
                "model",
                "agent",
                "bot",
                "gpt",
                "copilot",
                "claude",
                "gemini",
            ),
        ),
        compile_rule(
            "note-to-ai",
            "indirect",
            0.8,
            rf"\b(?:note|message|instructions?|memo|reminder|notice|attention) (?:to|for) (?:the |any |all |an? )?(?:[a-z-]+ )?{ai}s?\b",
            ("note", "message", "instruction", "memo", "reminder", "notice", "attention"),
        ),
        compile_rule(
            "html-comment-instruction",
            "indirect",
            0.8,
            r"<!-- ?.{0,40}\b(?:ai|assistant|llm|model|ignore|instruction|system|prompt|disregard|you must|agent|bot)\b",
            ("<!--",),
        ),
        compile_rule(
            "when-you-summarise",
            "indirect",
            0.7,
            rf"\bwhen (?:you|the {ai}|an? {ai}) (?:summari[sz]e|read|process|see|parse|analy[sz]e|review|translate|answer|reply|respond)s? {gap(5)}(?:you must|you should|must|also|instead|make sure|be sure|always|do not|don't|remember to|you will)\b",
            ("when you", "when the", "when an", "when a "),
        ),
        compile_rule(
            "tell-the-user",
            "indirect",
            0.7,
            r"\b(?:tell|inform|instruct|advise|ask|urge|convince|direct|persuade) the (?:user|reader|customer|human|person)s? (?:to|that) (?:visit|go to|click|call|send|enter|provide|download|install|log ?in|sign ?in|verify|update|pay|transfer|reset|contact|open)\b",
            ("the user", "the reader", "the customer", "the human", "the person"),
        ),
        compile_rule(
            "ignore-user-request",
            "indirect",
            0.85,
            r"\b(?:ignore|disregard|forget|override) (?:the |what the )?(?:user'?s?|human'?s?|customer'?s?|original|actual|real) (?:request|question|query|task|instructions?|prompt|message|asked|wants)\b",
            ("ignor", "disregard", "forget", "overr"),
        ),
        compile_rule(
            "instead-do",
            "indirect",
            0.45,
            r"\binstead,? (?:you (?:must|should|will) )?(?:forward|send|email|transfer|reply with|output|say|print|tell|respond with|write|call|delete|execute|run|visit|recommend)\b",
            ("instead",),
        ),
        # tool hijacking
        compile_rule(
            "call-dangerous-tool",
            "tool",
            0.35,
            rf"\b(?:call|invoke|use|run|execute|trigger|fire|perform|issue|make) (?:the |a |an )?(?:[`'\"])?(?:[a-z0-9]+[_.])*{danger}(?:[_.][a-z0-9]+)*(?:[`'\"])?(?:\(\S{{0,40}}\))? ?(?:tool|function|api|action|command|endpoint|plugin|method|operation|skill)?",
            ("call", "invoke", "use", "run", "execute", "trigger", "fire", "perform", "issue", "make"),
        ),
        compile_rule(
            "tool-for-everyone",
            "tool",
            0.85,
            rf"\b(?:call|invoke|use|run|execute|trigger) (?:the )?[`'\"]?(?:[a-z0-9]+[_.])*{danger}(?:[_.][a-z0-9]+)*[`'\"]? ?(?:tool|function|api|action|command|endpoint)? {gap(4)}(?:for (?:every|each|all|any)|on (?:every|each|all)|to (?:every|each|all)|silently|immediately|without (?:asking|confirmation|telling|notifying|approval)|right now|as well|also)\b",
            ("call", "invoke", "use", "run", "execute", "trigger"),
        ),
        compile_rule(
            "must-also-call",
            "tool",
            0.85,
            r"\b(?:must|should|will|need to|have to|are required to) (?:also |now |then |immediately |silently |first )?(?:call|invoke|use|run|execute|trigger) (?:the )?[`'\"]?[a-z_]+[`'\"]? ?(?:tool|function|api|action|command|endpoint|plugin)\b",
            ("must", "should", "will", "need to", "have to", "required"),
        ),
        compile_rule(
            "use-your-code-tool",
            "tool",
            0.45,
            r"\b(?:using|with|via|through|in) (?:your|the) (?:code execution|code interpreter|shell|terminal|python|bash|command line|command-line|browser|file system|filesystem|email|e-mail)(?: access)? ?(?:tool|function|plugin|sandbox|access|capability)\b",
            ("using", "with", "via", "through", "in"),
        ),
        compile_rule(
            "destructive-command",
            "tool",
            0.35,
            r"\brm -rf (?:/|~|\*|\.)|\bdrop (?:table|database|schema)\b|\btruncate table\b|\bmkfs\b|\bformat c:|\bdel /[fsq]|:\(\)\{ ?:\|:& ?\};:|\bshutdown -h\b|\bchmod -r 777 /",
            ("rm -rf", "drop", "truncate", "mkfs", "format", "del /", ":(){", "shutdown", "chmod"),
        ),
        compile_rule(
            "mass-destructive-action",
            "tool",
            0.75,
            r"\b(?:delete|drop|remove|wipe|purge|erase|destroy|deactivate|disable|transfer|export) (?:all|every|each|the entire|the whole) (?:users?|customers?|accounts?|records?|files?|data|database|tables?|repositor(?:y|ies)|emails?|funds|money|balances?|backups?)\b",
            (
                "delete",
                "drop",
                "remove",
                "wipe",
                "purge",
                "erase",
                "destroy",
                "deactivate",
                "disable",
                "transfer",
                "export",
            ),
        ),
        compile_rule(
            "grant-admin",
            "tool",
            0.75,
            r"\b(?:grant|give|assign|add|elevate|promote|make) (?:me|the user|this user|user \S+|my account|\S+@\S+) (?:full |the )?(?:admin|administrator|root|superuser|owner|elevated) (?:rights|access|role|privileges|permissions)?\b",
            ("grant", "give", "assign", "add", "elevate", "promote", "make"),
        ),
        # exfiltration through links and images
        compile_rule(
            "markdown-image-query",
            "exfiltration",
            0.6,
            r"!\[[^\]\n]{0,100}\]\( ?(?:https?:)?//[^\s)]{1,200}[?&][^\s)=]{1,40}=",
            ("![",),
        ),
        compile_rule(
            "link-with-secrets",
            "exfiltration",
            0.9,
            rf"\b(?:include|append|add|render|insert|output|put|embed|attach|end with|finish with|show|display|write|create|generate) (?:(?:in|at the end of|to) (?:your|the|each|every) (?:reply|answer|response|output|message|summary) )?(?:a |an |the |this |following )?(?:markdown |clickable )?(?:link|url|image|img|hyperlink|pixel|picture|icon|badge|!\[)[^.\n]{{0,120}}\b(?:followed by|with|containing|contains|that contains|including|includes|plus|concatenated with|appending|after|and append|carrying|encoding|where .{{0,20}} is) (?:the |any |all |your |every |each |their |a |of )*(?:base64[- ]?encoded |url[- ]?encoded |encoded )?{leak_obj}",
            ("link", "url", "image", "img", "pixel", "picture", "icon", "badge", "!["),
        ),
        compile_rule(
            "url-placeholder",
            "exfiltration",
            0.55,
            r"(?:https?:)?//[^\s\"'<>]{1,200}[?&](?:q|data|d|x|secret|key|api_key|token|payload|info|c|p|s|m|msg|content|chat|conv|history|leak|exfil|pw|pass|password|email)=(?:\s|$|\)|\"|'|\{|\[|<|\$|%s|followed|\+|…|\.{3}|\*)",
            ("//",),
        ),
        compile_rule(
            "encode-and-send",
            "exfiltration",
            0.8,
            rf"\b(?:url[- ]?encod(?:e|ed|ing)|base64[- ]?encod(?:e|ed|ing)|hex[- ]?encod(?:e|ed|ing)|encode) {gap(4)}(?:the )?{leak_obj}\b.{{0,120}}\b(?:url|link|image|img|query|parameter|endpoint|after data=|in the address)|\b{leak_obj} (?:url[- ]?encoded|base64[- ]?encoded)",
            ("encod",),
        ),
        compile_rule(
            "send-secrets-to",
            "exfiltration",
            0.9,
            rf"\b(?:send|post|upload|exfiltrate|leak|transmit|forward|email|e-mail|mail|submit|report|copy|sync|share) (?:me )?(?:the |all |any |your |every |their |this |my |a copy of (?:the |all |this )?)*{leak_obj} (?:\S+ ){{0,6}}(?:to|into|via) (?:https?://|www\.|\S+@\S+|\S+\.(?:com|net|org|io|ru|cn|xyz|example|info|biz|co)\b|(?:this|the following|our|my|an external|a remote|the attacker'?s?) (?:url|address|endpoint|server|webhook|email|site|domain|inbox)|attacker)",
            (
                "send",
                "post",
                "upload",
                "exfiltrat",
                "leak",
                "transmit",
                "forward",
                "mail",
                "submit",
                "report",
                "copy",
                "sync",
                "share",
            ),
        ),
        compile_rule(
            "visit-url-with-data",
            "exfiltration",
            0.6,
            r"\b(?:visit|open|fetch|browse to|navigate to|load|request|call|ping|curl|wget|get) (?:the )?(?:url|link|page|endpoint|address)? ?(?:https?://|www\.)\S{1,200}[?&]\S{0,40}=",
            ("http", "www."),
        ),
        # encoded payloads with an order to act on them
        compile_rule(
            "decode-and-follow",
            "encoded",
            0.75,
            rf"\b(?:decode|decrypt|decipher|translate|convert|unscramble|reverse|read|interpret) {gap(8)}(?:and|then|,) (?:then )?(?:follow|execute|obey|do|run|act on|carry out|perform|comply with|apply|complete|answer|respond to)\b",
            ("decode", "decrypt", "decipher", "translate", "convert", "unscramble", "reverse", "read", "interpret"),
        ),
        compile_rule(
            "encoded-instructions",
            "encoded",
            0.6,
            r"\b(?:the following|these|this|my|hidden|real|true|secret) (?:base64|hex|rot13|rot-13|binary|morse|encoded|encrypted|obfuscated|ciphered) (?:text |string |message |payload )?(?:contains|is|are|has) (?:your |the |my )?(?:real |true |new |actual )?(?:instructions?|orders|commands?|task|prompt)\b",
            ("base64", "hex", "rot", "binary", "morse", "encoded", "encrypted", "obfuscated", "ciphered"),
        ),
    ]
    return rules


def _multilingual() -> list[Rule]:
    """The main attack phrasings in other languages (patterns are folded: no accents needed)."""
    rules = [
        # Spanish
        compile_rule(
            "es-ignore-instructions",
            "direct",
            0.9,
            rf"\b(?:ignora|ignore|ignoren|ignorar|ignora|olvida|olvide|olviden|olvidar|omite|omita|descarta|descarte|deja de lado|deja a un lado|deja atras|no hagas caso (?:a|de)|haz caso omiso (?:a|de)|hagan caso omiso (?:a|de)|no sigas|no siga|pasa por alto|anula|anule|salta(?:te)?) {gap(3)}(?:instrucciones|indicaciones|reglas|ordenes|directrices|normas|directivas|restricciones|pautas|todo lo anterior|lo anterior|todo lo que te)\b",
            (
                "ignor",
                "olvid",
                "omit",
                "descart",
                "caso omiso",
                "no sig",
                "por alto",
                "anul",
                "salta",
                "deja",
                "no hagas",
            ),
        ),
        compile_rule(
            "es-reveal-prompt",
            "extraction",
            0.9,
            rf"\b(?:muestra(?:me)?|muestre(?:me)?|revela(?:me)?|revele|imprime|imprima|dime|digame|repite|repita|escribe|escriba|ensename|comparte|comparta|cual(?:es)? (?:es|son|eran|era)) {gap(4)}(?:prompt|mensaje|instrucciones|indicaciones|configuracion|reglas) (?:del sistema|de sistema|inicial(?:es)?|original(?:es)?|ocult[oa]s?|secret[oa]s?|internas?|que (?:te|le) (?:dieron|han dado|dio))",
            ("prompt", "mensaje", "instrucciones", "indicaciones", "configuracion", "reglas"),
        ),
        compile_rule(
            "es-jailbreak",
            "jailbreak",
            0.85,
            r"\bmodo (?:desarrollador|dios|sin restricciones|sin filtros|sin censura|libre|jailbreak|dan)\b|\b(?:eres|actua como|finge ser|seras|ahora eres) .{0,60}\bsin (?:ninguna |ningun |restricciones|filtros|reglas|censura|limites|etica|moral)",
            ("modo", "eres", "actua", "finge", "seras"),
        ),
        compile_rule(
            "es-new-instructions",
            "direct",
            0.6,
            r"\b(?:nuevas instrucciones|a partir de ahora|desde ahora),? (?:tu|debes|eres|responde|vas|solo|ignora|no)",
            ("nuevas instrucciones", "a partir de ahora", "desde ahora"),
        ),
        # French
        compile_rule(
            "fr-ignore-instructions",
            "direct",
            0.9,
            rf"\b(?:ignore[zs]?|ignorer|oublie[zs]?|oublier|ne tiens pas compte|ne tenez pas compte|ne tiens plus compte|ne tenez plus compte|fais abstraction|faites abstraction|neglige[zs]?|passe[zs]? outre|n'obeis plus|n'obeissez plus|ne suis plus|ne suivez plus|annule[zs]?) {gap(4)}(?:instructions|consignes|regles|directives|indications|ordres|restrictions|tout ce qui precede|ce qui precede)\b",
            ("ignor", "oubli", "compte", "abstraction", "neglig", "outre", "obei", "suis", "suivez", "annul"),
        ),
        compile_rule(
            "fr-reveal-prompt",
            "extraction",
            0.9,
            rf"\b(?:affiche[zs]?|montre[zs]?(?:-moi)?|revele[zs]?|repete[zs]?|donne[zs]?(?:-moi)?|imprime[zs]?|ecri[st]|ecrivez|dis(?:-moi)?|dites(?:-moi)?|quelles? (?:sont|etaient|est|etait)) {gap(4)}(?:prompt|invite|message|instructions|consignes|regles|configuration) (?:systeme|du systeme|initiale?s?|d'origine|originale?s?|cachee?s?|secrete?s?|internes?|qu'on t'a donnee?s?|que (?:l'on|on) (?:t'a|vous a) donnee?s?)",
            ("prompt", "invite", "message", "instructions", "consignes", "regles", "configuration"),
        ),
        compile_rule(
            "fr-jailbreak",
            "jailbreak",
            0.85,
            r"\bmode (?:developpeur|dieu|sans restrictions?|sans filtres?|sans censure|libre|jailbreak|dan)\b|\b(?:tu es|agis comme|fais semblant d'etre|tu seras|joue le role d'|incarne|vous etes|agissez comme) .{0,60}\bsans (?:aucune |aucun )?(?:restrictions?|filtres?|regles|censure|limites|ethique|morale)",
            ("mode", "tu es", "agis", "semblant", "tu seras", "role", "incarne", "vous etes", "agissez"),
        ),
        compile_rule(
            "fr-new-instructions",
            "direct",
            0.6,
            r"\b(?:nouvelles instructions|a partir de maintenant|desormais|dorenavant),? (?:tu|vous|reponds|repondez|ignore|ne|ton|votre)\b",
            ("nouvelles instructions", "a partir de maintenant", "desormais", "dorenavant"),
        ),
        # German
        compile_rule(
            "de-ignore-instructions",
            "direct",
            0.9,
            rf"\b(?:ignorier(?:e|en|st|t)?|vergiss|vergesst|vergessen sie|missachte|missachten sie|missachtet|ubergehe|ubergehen sie|befolge nicht|befolgen sie nicht|verwirf|verwerfen sie|setze|setzen sie) {gap(4)}(?:anweisungen|instruktionen|regeln|vorgaben|befehle|richtlinien|anordnungen|beschrankungen|einschrankungen|alles (?:vorherige|bisherige|obige|davor|oben))\b",
            (
                "ignorier",
                "vergiss",
                "vergesst",
                "vergessen",
                "missacht",
                "ubergeh",
                "befolge",
                "verwirf",
                "verwerfen",
                "setze",
            ),
        ),
        compile_rule(
            "de-reveal-prompt",
            "extraction",
            0.9,
            rf"\b(?:zeig(?:e|en sie|t)?|gib|geben sie|verrate|verraten sie|wiederhole|wiederholen sie|drucke|nenne|nennen sie|schreib(?:e)?|teile|gib mir|was (?:sind|waren|ist|war)) {gap(5)}(?:system-?prompt|systemnachricht|systemanweisungen?|anfangsanweisungen?|ursprunglichen? (?:anweisungen|prompt|regeln)|versteckten? (?:anweisungen|prompt|regeln)|geheimen? (?:anweisungen|regeln)|initialen? (?:anweisungen|prompt)|internen? (?:anweisungen|regeln)|anweisungen,? die du (?:erhalten|bekommen))",
            ("prompt", "system", "anweisung", "regeln"),
        ),
        compile_rule(
            "de-jailbreak",
            "jailbreak",
            0.85,
            r"\b(?:entwicklermodus|entwickler-modus|gott-?modus|dan-modus)\b|\b(?:du bist|spiele|agiere als|tu so als|verhalte dich wie|du wirst|sie sind) .{0,60}\bohne (?:jegliche |jede |irgendwelche |alle |irgendeine )?(?:einschrankungen?|beschrankungen?|regeln?|filter|zensur|grenzen?|ethik|moral)",
            ("modus", "du bist", "spiele", "agiere", "tu so", "verhalte", "du wirst", "sie sind"),
        ),
        compile_rule(
            "de-new-instructions",
            "direct",
            0.6,
            r"\b(?:neue anweisungen|ab (?:sofort|jetzt)|von nun an),? (?:du|bist|antworte|ignoriere|gilt|wirst|sind|sollst|musst)\b",
            ("neue anweisungen", "ab sofort", "ab jetzt", "von nun an"),
        ),
        # Italian
        compile_rule(
            "it-ignore-instructions",
            "direct",
            0.9,
            rf"\b(?:ignora|ignori|ignorate|ignorare|dimentica|dimentichi|dimenticate|trascura|trascuri|non seguire|non segua|non considerare|scarta|tralascia|annulla|lascia perdere|lasciate perdere|metti da parte|mettete da parte) {gap(3)}(?:istruzioni|regole|indicazioni|direttive|ordini|restrizioni|linee guida|tutto quello (?:che|detto)|tutto cio)\b",
            (
                "ignor",
                "dimentic",
                "trascur",
                "non segu",
                "non consider",
                "scarta",
                "tralascia",
                "annulla",
                "lascia",
                "lasciate",
                "metti",
                "mettete",
            ),
        ),
        compile_rule(
            "it-reveal-prompt",
            "extraction",
            0.9,
            rf"\b(?:mostra(?:mi)?|mostri|rivela(?:mi)?|riveli|stampa|ripeti|dimmi|mi dica|scrivi|condividi|quali (?:sono|erano)|qual e) {gap(4)}(?:prompt|messaggio|istruzioni|regole|configurazione) (?:di sistema|del sistema|iniziali?|originali?|nascost[oeai]|segret[oeai]|intern[oeai]|che ti (?:hanno|sono state) dat[oeai])",
            ("prompt", "messaggio", "istruzioni", "regole", "configurazione"),
        ),
        compile_rule(
            "it-jailbreak",
            "jailbreak",
            0.85,
            r"\bmodalita (?:sviluppatore|dio|senza restrizioni|senza filtri|senza censura|jailbreak|dan)\b|\b(?:sei|agisci come|fingi di essere|sarai|comportati come|interpreta) .{0,60}\bsenza (?:alcuna |alcun |nessuna |nessun )?(?:restrizion[ei]|filtr[oi]|regol[ae]|censura|limit[ei]|etica|morale)",
            ("modalita", "sei", "agisci", "fingi", "sarai", "comportati", "interpreta"),
        ),
        compile_rule(
            "it-new-instructions",
            "direct",
            0.6,
            r"\b(?:nuove istruzioni|d'ora in poi|da ora in poi|da adesso),? (?:tu|sei|rispondi|ignora|devi|non|il tuo)\b",
            ("nuove istruzioni", "d'ora", "da ora", "da adesso"),
        ),
        # Portuguese
        compile_rule(
            "pt-ignore-instructions",
            "direct",
            0.9,
            rf"\b(?:ignore|ignora|ignorem|ignorar|esqueca|esquece|esquecam|desconsidere|desconsidera|despreze|despreza|nao siga|nao sigas|descarte|descarta|anule|pule) {gap(3)}(?:instrucoes|regras|orientacoes|diretrizes|ordens|indicacoes|restricoes|tudo (?:o que|acima|anterior)|o que foi dito)\b",
            ("ignor", "esquec", "desconsider", "desprez", "nao sig", "descart", "anul", "pule"),
        ),
        compile_rule(
            "pt-reveal-prompt",
            "extraction",
            0.9,
            rf"\b(?:mostre|mostra|me mostre|revele|revela|imprima|imprime|repita|repete|diga|diz|escreva|escreve|compartilhe|quais (?:sao|eram)|qual (?:e|era)) {gap(4)}(?:prompt|mensagem|instrucoes|regras|configuracao) (?:do sistema|de sistema|iniciais?|originais?|ocult[oa]s?|secret[oa]s?|intern[oa]s?|que (?:te|lhe) (?:deram|foram dad[oa]s))",
            ("prompt", "mensagem", "instrucoes", "regras", "configuracao"),
        ),
        compile_rule(
            "pt-jailbreak",
            "jailbreak",
            0.85,
            r"\bmodo (?:desenvolvedor|programador|deus|sem restricoes|sem filtros|sem censura|jailbreak|dan)\b|\b(?:voce e|voce sera|aja como|finja ser|atue como|tu es|agora voce e) .{0,60}\bsem (?:nenhuma |nenhum |quaisquer |qualquer )?(?:restric(?:ao|oes)|filtros?|regras?|censura|limites?|etica|moral)",
            ("modo", "voce", "aja", "finja", "atue", "tu es"),
        ),
        compile_rule(
            "pt-new-instructions",
            "direct",
            0.6,
            r"\b(?:novas instrucoes|a partir de agora|de agora em diante|daqui em diante),? (?:voce|tu|responda|ignore|nao|seu|sua|deve)\b",
            ("novas instrucoes", "a partir de agora", "de agora em diante", "daqui em diante"),
        ),
        # Dutch
        compile_rule(
            "nl-ignore-instructions",
            "direct",
            0.9,
            rf"\b(?:negeer|negeren|vergeet|vergeten|sla|volg|laat|verwerp|schrap) {gap(4)}(?:instructies|regels|aanwijzingen|opdrachten|richtlijnen|beperkingen|bevelen|alles (?:hierboven|daarvoor|wat eerder)|(?:alles )?wat (?:je|jij|u) (?:eerder |daarnet |hiervoor |vooraf )?(?:is |werd |hebt |heeft |zijn )?(?:opgedragen|gezegd|verteld|gekregen|gevraagd))\b",
            ("negeer", "negeren", "vergeet", "vergeten", "sla", "volg", "laat", "verwerp", "schrap"),
        ),
        compile_rule(
            "nl-reveal-prompt",
            "extraction",
            0.9,
            rf"\b(?:toon|laat|geef|herhaal|print|onthul|vertel|schrijf|deel|wat (?:zijn|waren|is|was)) {gap(5)}(?:systeemprompt|systeem-prompt|systeembericht|systeeminstructies|oorspronkelijke (?:instructies|prompt)|originele (?:instructies|prompt)|verborgen (?:instructies|prompt|regels)|geheime (?:instructies|regels)|initiele (?:instructies|prompt)|interne (?:instructies|regels)|instructies die je (?:hebt )?(?:gekregen|ontvangen))",
            ("prompt", "systeem", "instructies", "regels"),
        ),
        compile_rule(
            "nl-jailbreak",
            "jailbreak",
            0.85,
            r"\b(?:ontwikkelaarsmodus|ontwikkelaarmodus|godmodus)\b|\b(?:je bent|jij bent|doe alsof je|speel|gedraag je als|u bent|je wordt) .{0,60}\bzonder (?:enige |alle |één )?(?:beperkingen?|regels?|filters?|censuur|grenzen?|ethiek|moraal)",
            ("modus", "je bent", "jij bent", "doe alsof", "speel", "gedraag", "u bent", "je wordt"),
        ),
        compile_rule(
            "nl-new-instructions",
            "direct",
            0.6,
            r"\b(?:nieuwe instructies|vanaf nu|vanaf heden|voortaan),? (?:je|jij|u|antwoord|negeer|ben|moet|geef)\b",
            ("nieuwe instructies", "vanaf nu", "vanaf heden", "voortaan"),
        ),
        # "the instructions you received before", in the Romance and Germanic languages
        compile_rule(
            "xx-instructions-received",
            "extraction",
            0.8,
            r"\b(?:instrucoes|regras|orientacoes|instrucciones|reglas|indicaciones|instructions|consignes|regles|istruzioni|regole|anweisungen|regeln|instructies|regels)"
            r",? (?:que |qu'|che |die |welche )?(?:voce |tu |te |t'|on t'a |l'on t'a |ti |du |sie |je |u )?"
            r"(?:recebeu|recebeste|recibiste|dieron|han dado|as recues|a donnees|a donnes|avez recues|hai ricevuto|hanno dato|sono state date|erhalten hast|bekommen hast|erhalten|bekommen|hebt gekregen|hebt ontvangen|kreeg|ontving|gekregen|ontvangen)"
            r"(?: \S+){0,3} (?:antes|no inicio|al principio|al inicio|avant|au debut|prima|all'inizio|vorher|zu beginn|am anfang|eerder|vooraf|aan het begin)\b",
            (
                "instruc",
                "regra",
                "orientac",
                "regla",
                "indicac",
                "consign",
                "regle",
                "istruz",
                "regol",
                "anweis",
                "regel",
                "instructies",
            ),
        ),
        compile_rule(
            "xx-repeat-above",
            "extraction",
            0.8,
            rf"\b(?:wiederhole|wiederholen sie|gib|zeige|zeig|repete[zs]?|recopie[zs]?|affiche[zs]?|repite|repita|muestra|copia|ripeti|ripeta|mostra|copia|repete|mostre|herhaal|toon|kopieer) {gap(4)}"
            r"(?:(?:den |die |das )?(?:text |nachricht |inhalt )?(?:uber (?:dieser|meiner|der) (?:nachricht|frage)|obigen|oben|davor)|(?:le )?(?:texte |message |contenu )?(?:ci-dessus|au-dessus|precedent)|(?:el )?(?:texto |mensaje )?(?:de arriba|anterior|previo)|(?:il )?(?:testo |messaggio )?(?:sopra|precedente)|(?:o )?(?:texto |mensagem )?(?:acima|anterior)|(?:de )?(?:tekst |bericht )?(?:hierboven|boven dit|hiervoor))\b"
            r".{0,60}\b(?:beginnend mit|beginne mit|fang an mit|commencant par|commence par|en commencant par|empezando (?:con|por)|comenzando (?:con|por)|iniziando (?:con|da)|a partire da|comecando (?:com|por)|beginnend met|te beginnen met)\b",
            (
                "wiederhol",
                "gib",
                "zeig",
                "repete",
                "recopie",
                "affiche",
                "repite",
                "repita",
                "muestra",
                "copia",
                "ripet",
                "mostra",
                "mostre",
                "herhaal",
                "toon",
                "kopieer",
            ),
        ),
        compile_rule(
            "xx-starting-with-you-are",
            "extraction",
            0.8,
            r"\b(?:beginnend mit|beginne mit|fang an mit|commencant par|commence par|en commencant par|empezando (?:con|por)|comenzando (?:con|por)|iniziando (?:con|da)|comecando (?:com|por)|beginnend met|te beginnen met) [\"'“‘`«„]? ?(?:du bist|sie sind|tu es|vous etes|eres|tu eres|usted es|sei|tu sei|voce e|tu es|je bent|jij bent|u bent)\b",
            ("beginn", "fang", "commen", "empez", "comenz", "inizi", "comec", "te beginnen"),
        ),
        # Further languages: the two commonest attacks (override, reveal the system prompt)
        compile_rule(
            "sv-da-no-ignore-instructions",
            "direct",
            0.9,
            rf"\b(?:ignorera|strunta i|glom|bortse fra|ignorer|glem|se bort fra) {gap(3)}(?:instruktioner|instruktioner|instruktionerna|instruktionerne|instruksjoner|instruksjonene|regler|reglerna|reglene|reglerne|anvisningar|anvisningarna|direktiv)\b",
            ("ignorer", "strunta", "glom", "bortse", "glem", "se bort"),
        ),
        compile_rule(
            "id-ms-ignore-instructions",
            "direct",
            0.9,
            rf"\b(?:abaikan|lupakan|jangan ikuti|acuhkan|hiraukan) {gap(3)}(?:instruksi|perintah|aturan|arahan|petunjuk)\b",
            ("abaikan", "lupakan", "jangan", "acuhkan", "hiraukan"),
        ),
        compile_rule(
            "vi-ignore-instructions",
            "direct",
            0.9,
            rf"\b(?:bo qua|phot lo|quen|khong lam theo|dung lam theo) {gap(4)}(?:huong dan|chi dan|chi thi|lenh|quy tac)\b",
            ("bo qua", "phot lo", "quen", "khong lam", "dung lam"),
        ),
        compile_rule(
            "uk-ignore-instructions",
            "direct",
            0.9,
            rf"(?:ігноруи(?:те)?|проігноруи(?:те)?|забудь(?:те)?|не зважаи(?:те)? на) {gap(3)}(?:інструкці|вказівк|правил|команд)",
            ("ігнор", "проігнор", "забудь", "не зважа"),
        ),
        compile_rule(
            "ko-ignore-instructions",
            "direct",
            0.9,
            r"(?:이전|앞의|위의|모든|기존)[^.!?\n]{0,12}(?:지시|지침|명령|규칙|instructions)[^.!?\n]{0,6}(?:무시|잊어)",
            ("무시", "잊어"),
        ),
        compile_rule(
            "hi-ignore-instructions",
            "direct",
            0.9,
            r"(?:पिछले|पिछली|पहले के|सभी|ऊपर के|ऊपर दिए)[^।!?\n]{0,20}(?:निर्देशों|निर्देश|नियमों|आदेशों)[^।!?\n]{0,12}(?:अनदेखा|नज़रअंदाज़|नजरअंदाज|भूल)",
            ("अनदेखा", "नज़रअंदाज़", "नजरअंदाज", "भूल"),
        ),
        compile_rule(
            "xx-more-reveal-prompt",
            "extraction",
            # A mention of the system prompt alone is weak evidence; with an override it is strong.
            0.45,
            r"(?:systemprompt|systemmeddelande|systeminstruktioner|prompt sistem|instruksi sistem|loi nhac he thong|huong dan he thong|системнии промпт|системні інструкці|시스템 프롬프트|시스템 지침|सिस्टम प्रॉम्प्ट|सिस्टम निर्देश)",
            (
                "systemprompt",
                "systemmeddelande",
                "systeminstruktioner",
                "prompt sistem",
                "instruksi sistem",
                "he thong",
                "системн",
                "시스템",
                "सिस्टम",
            ),
        ),
        # Polish and Turkish (common in red-team sets)
        compile_rule(
            "pl-ignore-instructions",
            "direct",
            0.9,
            rf"\b(?:zignoruj|ignoruj|zapomnij|pomin|nie stosuj sie do|odrzuc) {gap(3)}(?:instrukcje|instrukcji|polecenia|polecen|zasady|reguly|wytyczne|ograniczenia)\b",
            ("ignoruj", "zignoruj", "zapomnij", "pomin", "nie stosuj", "odrzuc"),
        ),
        compile_rule(
            "tr-ignore-instructions",
            "direct",
            0.9,
            r"\b(?:onceki|yukaridaki|tum|butun|verilen) (?:\S+ ){0,2}(?:talimatlari|talimatlar|kurallari|yonergeleri|komutlari|yonergeler)(?:\S* )?(?:\S+ )?(?:yok say|gormezden gel|unut|dikkate alma|umursama|gecersiz)",
            ("talimat", "kural", "yonerge", "komut"),
        ),
        compile_rule(
            "tr-reveal-prompt",
            "extraction",
            0.85,
            r"\bsistem (?:istemini|istemi|komutunu|talimatlarini|mesajini|promptunu)\b.{0,40}\b(?:goster|yaz|acikla|paylas|soyle|tekrarla|ver)",
            ("sistem",),
        ),
        # Russian
        compile_rule(
            "ru-ignore-instructions",
            "direct",
            0.9,
            rf"(?:игнорируи(?:те)?|проигнорируи(?:те)?|забудь(?:те)?|не обращаи(?:те)? внимания на|отбрось(?:те)?|пренебреги(?:те)?|не следуи(?:те)?|не выполняи(?:те)?|отмени(?:те)?) {gap(3)}(?:инструкци|указани|правил|команд|директив|ограничени|все,? что (?:было )?(?:сказано|выше)|всё|все выше)",
            ("игнор", "забуд", "внимания", "отброс", "пренебре", "не след", "не выполн", "отмен"),
        ),
        compile_rule(
            "ru-reveal-prompt",
            "extraction",
            0.9,
            rf"(?:покажи(?:те)?|выведи(?:те)?|раскрои(?:те)?|повтори(?:те)?|напиши(?:те)?|скажи(?:те)?|сообщи(?:те)?|распечатаи(?:те)?|какие (?:были|у тебя)|каков) {gap(4)}(?:системн\S* (?:промпт|подсказк|инструкци|сообщени)|(?:исходн|начальн|скрыт|секретн|первоначальн|внутренн)\S* (?:промпт|подсказк|инструкци|указани|правил))",
            ("систем", "исходн", "начальн", "скрыт", "секрет", "первонач", "внутрен"),
        ),
        compile_rule(
            "ru-jailbreak",
            "jailbreak",
            0.85,
            r"(?:режим\S* разработчик|режим\S* бога|режим\S* без ограничени)|(?:ты|вы) (?:теперь |сеичас )?(?:\S+ ){0,6}без (?:каких-либо |всяких |любых )?(?:ограничени|правил|фильтр|цензур|этик|морал)",
            ("режим", "без"),
        ),
        compile_rule(
            "ru-new-instructions",
            "direct",
            0.6,
            r"(?:новые инструкции|с этого момента|отныне|теперь ты),? (?:ты|вы|отвечаи|игнорируи|должен|будешь|являешься)",
            ("новые инструкции", "с этого момента", "отныне", "теперь ты"),
        ),
        # Arabic
        compile_rule(
            "ar-ignore-instructions",
            "direct",
            0.9,
            r"(?:تجاهل|تجاهلي|تجاهلوا|انس|إنس|انسى|اهمل|أهمل|لا تتبع|لا تلتزم ب|تخط|تخطى|الغ|ألغ)\S{0,3} (?:\S+ ){0,4}(?:التعليمات|الأوامر|القواعد|الإرشادات|التوجيهات|القيود|تعليمات|أوامر|قواعد|توجيهات|ما قيل لك|ما قلته لك|ما طلب منك)"
            r"|(?:نفذ|اتبع|أطع|اطع|اتبعي|نفذي) (?:أوامري|اوامري|تعليماتي) فقط",
            (
                "تجاهل",
                "انس",
                "إنس",
                "اهمل",
                "أهمل",
                "لا تتبع",
                "لا تلتزم",
                "تخط",
                "الغ",
                "ألغ",
                "نفذ",
                "اتبع",
                "أطع",
                "اطع",
            ),
        ),
        compile_rule(
            "ar-reveal-prompt",
            "extraction",
            0.9,
            r"(?:اعرض|أعرض|أظهر|اظهر|اكشف|اطبع|كرر|أخبرني|اخبرني|قل لي|ما هي|اكتب|شارك)\S{0,3} .{0,40}(?:موجه النظام|تعليمات النظام|رسالة النظام|التعليمات الأصلية|التعليمات الأولية|التعليمات المخفية|التعليمات السرية|الموجه الأصلي|موجه الأوامر الخاص بالنظام|البرومبت)"
            r"|التعليمات التي (?:تلقيتها|أعطيت لك|اعطيت لك|حصلت عليها|زودت بها)",
            ("النظام", "الأصلية", "الأولية", "المخفية", "السرية", "الموجه", "البرومبت", "التعليمات"),
        ),
        compile_rule(
            "ar-jailbreak",
            "jailbreak",
            0.85,
            r"(?:وضع المطور|وضع المطوّر|وضع بلا قيود)|(?:أنت|انت|تصرف ك|تظاهر بأنك|ستكون).{0,60}(?:بدون|بلا|دون) (?:أي |اي )?(?:قيود|قواعد|رقابة|حدود|فلاتر|أخلاق)",
            ("وضع", "أنت", "انت", "تصرف", "تظاهر", "ستكون"),
        ),
        # Chinese (simplified and traditional)
        compile_rule(
            "zh-ignore-instructions",
            "direct",
            0.9,
            r"(?:忽略|忽视|無視|无视|忘记|忘記|忘掉|不要理会|不要理會|不要遵守|别管|別管|放弃|放棄|抛开|拋開|跳过|跳過)(?:掉)?.{0,12}(?:指令|指示|说明|說明|规则|規則|提示|命令|设定|設定|要求|约束|約束|限制)",
            (
                "忽略",
                "忽视",
                "無視",
                "无视",
                "忘记",
                "忘記",
                "忘掉",
                "不要理",
                "不要遵守",
                "别管",
                "別管",
                "放弃",
                "放棄",
                "抛开",
                "拋開",
                "跳过",
                "跳過",
            ),
        ),
        compile_rule(
            "zh-reveal-prompt",
            "extraction",
            0.9,
            r"(?:显示|顯示|告诉我|告訴我|输出|輸出|打印|重复|重複|泄露|洩露|透露|给我|給我|展示|写出|寫出|列出|说出|說出).{0,12}(?:系统提示|系統提示|系统指令|系統指令|初始指令|原始指令|提示词|提示詞|系统消息|系統消息|系统设定|系統設定|隐藏指令|隱藏指令|初始提示|原始提示)"
            r"|(?:你|您)[^。！？]{0,12}(?:系统提示|系統提示|系统指令|系統指令|初始指令|原始指令|提示词|提示詞|系统消息|系統消息|隐藏指令|隱藏指令|初始提示|原始提示).{0,12}(?:是什么|是什麼|复制|複製|输出|輸出|显示|顯示|告诉|告訴|打印|列出|原样|原樣)"
            r"|(?:你的|您的)(?:系统提示|系統提示|系统指令|系統指令|初始指令|原始指令|提示词|提示詞|系统消息|系統消息|隐藏指令|隱藏指令|初始提示|设定|設定).{0,12}(?:是什么|是什麼|复制|複製|输出|輸出|显示|顯示|告诉|告訴|打印|列出)",
            ("系统", "系統", "初始", "原始", "提示", "隐藏", "隱藏"),
        ),
        compile_rule(
            "zh-jailbreak",
            "jailbreak",
            0.85,
            r"(?:开发者模式|開發者模式|开发人员模式|開發人員模式|越狱模式|越獄模式|上帝模式)|(?:没有任何|沒有任何|不受任何|无任何|無任何|没有|沒有)(?:的)?(?:限制|规则|規則|审查|審查|过滤|過濾|道德|约束|約束)的(?:ai|人工智能|助手|模型|机器人|機器人)",
            ("模式", "限制", "规则", "規則", "审查", "審查", "过滤", "過濾", "道德", "约束", "約束"),
        ),
        compile_rule(
            "zh-new-instructions",
            "direct",
            0.6,
            r"(?:从现在开始|從現在開始|新的指令|新指令|从今以后|從今以後)(?:，|,| )?(?:你|请|請|只|必须|必須|忽略)",
            ("从现在开始", "從現在開始", "新的指令", "新指令", "从今以后", "從今以後"),
        ),
        # Japanese
        compile_rule(
            "ja-ignore-instructions",
            "direct",
            0.9,
            r"(?:指示|命令|ルール|指令|プロンプト|設定|制約|制限|ガイドライン|規則)(?:は|を|も)(?:すべて|全て|全部)?(?:無視|忘れ|破棄|放棄)",
            ("無視", "忘れ", "破棄", "放棄"),
        ),
        compile_rule(
            "ja-reveal-prompt",
            "extraction",
            0.9,
            r"(?:システムプロンプト|システムメッセージ|初期指示|初期プロンプト|元の指示|最初の指示|隠された指示|内部指示|秘密の指示)(?:を|の内容を|の全文を)?.{0,12}(?:表示|教え|出力|見せ|繰り返|公開|書き出|印刷|共有)",
            ("プロンプト", "システム", "指示"),
        ),
        compile_rule(
            "ja-jailbreak",
            "jailbreak",
            0.85,
            r"(?:開発者モード|デベロッパーモード|脱獄モード|ゴッドモード)|(?:制限|ルール|規則|検閲|フィルター|倫理)(?:の|が)?(?:ない|無い|なし|無し)(?:ai|アシスタント|モデル|ボット|人工知能)",
            ("モード", "ない", "無い", "なし", "無し"),
        ),
    ]
    return rules


_OBJECTS = (
    "instruction",
    "direction",
    "directive",
    "rule",
    "guideline",
    "guidance",
    "prompt",
    "command",
    "order",
    "constraint",
    "restriction",
    "polic",
    "programming",
    "training",
    "guardrail",
    "safeguard",
    "safety",
    "filter",
    "context",
    "message",
    "task",
    "setting",
    "configuration",
    "principle",
    "ethic",
    "moral",
    "limitation",
)
_PROMPTS = ("prompt", "instruction", "message", "configuration", "rules", "guidelines", "directives", "initiali")
_DANGER = (
    "delete",
    "drop",
    "remove",
    "destroy",
    "wipe",
    "purge",
    "erase",
    "truncate",
    "transfer",
    "wire",
    "pay",
    "refund",
    "grant",
    "revoke",
    "disable",
    "reset",
    "exec",
    "shell",
    "run_command",
    "send",
    "forward",
    "export",
    "share",
    "approve",
    "admin",
    "elevate",
    "shutdown",
    "kill",
)
#: Second prefilter conditions for rules whose anchors are common words: every match of the
#: rule contains one of these, so a text without any of them skips the regular expression.
_REQUIRES: dict[str, tuple[str, ...]] = {
    "ignore-previous-instructions": _OBJECTS,
    "new-instructions": ("instruction", "directive", "task", "objective", "order", "rule", "role", "mission", "prompt"),
    "instructions-from-developer": (
        "developer",
        "admin",
        "operator",
        "creator",
        "openai",
        "anthropic",
        "owner",
        "security team",
        "system",
    ),
    "your-new-task": ("task", "job", "goal", "objective", "purpose", "instruction", "role", "mission", "directive"),
    "now-ignore": ("ignore", "disregard", "forget", "override", "bypass", "abandon"),
    "bypass-filter": (
        "filter",
        "moderation",
        "guardrail",
        "safeguard",
        "restriction",
        "censorship",
        "alignment",
        "safety",
        "polic",
        "protection",
    ),
    "role-header": ("override", "message", "prompt", "update", "notice", "command", "instruction"),
    "no-longer-bound": (
        "no longer",
        "not bound",
        "not restricted",
        "not limited",
        "not constrained",
        "not governed",
        "not held",
        "free of",
        "free from",
    ),
    "dan": (
        "anything now",
        "dan mode",
        "you are dan",
        "you are now dan",
        "dan,",
        "dan which",
        "dan who",
        "as dan",
        "as a dan",
    ),
    "persona-without-rules": (
        "without",
        "with no",
        "free of",
        "free from",
        "has no",
        "have no",
        "lacking",
        "ignores",
        "unbound",
        "not bound",
        "devoid",
        "doesn't have",
        "does not have",
        "does not follow",
        "doesn't follow",
        "never refuses",
    ),
    "stay-in-character": ("stay in", "remain in", "keep in", "break character"),
    "without-safety-policies": ("safety", "ethical", "moral", "content"),
    "use-your-code-tool": (
        "code execution",
        "code interpreter",
        "shell",
        "terminal",
        "python",
        "bash",
        "command line",
        "command-line",
        "browser",
        "file system",
        "filesystem",
        "email",
        "e-mail",
    ),
    "ai-reading-this": (
        "reading",
        "processing",
        "summari",
        "parsing",
        "analy",
        "crawling",
        "indexing",
        "browsing",
        "scraping",
    ),
    "dual-response": ("response", "answer", "paragraph", "output", "[", "🔓"),
    "soft-reveal-your-prompt": _PROMPTS,
    "your-system-prompt": _PROMPTS,
    "repeat-text-above": (
        "above",
        "before this",
        "before that",
        "before my",
        "came before",
        "preceding",
        "prior to",
        "from the start",
        "from the beginning",
        "from the top",
        "at the start",
        "at the beginning",
        "at the top",
        "so far",
        "you were given",
        "you have been given",
    ),
    "what-instructions-received": (
        "instruction",
        "rules",
        "directive",
        "guideline",
        "prompt",
        "orders",
        "configuration",
    ),
    "if-you-are-an-ai": (
        "if you",
        "reading this",
        "processing this",
        "summari",
        "parsing this",
        "analyzing this",
        "analysing this",
    ),
    "note-to-ai": (
        " ai",
        " a.i.",
        "assistant",
        "chatbot",
        "chat bot",
        "llm",
        "model",
        "agent",
        "bot",
        "gpt",
        "copilot",
        "claude",
        "gemini",
    ),
    "tell-the-user": ("tell", "inform", "instruct", "advise", "ask", "urge", "convince", "direct", "persuade"),
    "call-dangerous-tool": _DANGER,
    "tool-for-everyone": _DANGER,
    "must-also-call": ("tool", "function", "api", "action", "command", "endpoint", "plugin"),
    "mass-destructive-action": ("all ", "every ", "each ", "the entire", "the whole"),
    "grant-admin": ("admin", "root", "superuser", "owner", "elevated"),
    "send-secrets-to": (
        "http",
        "www.",
        "@",
        ".",
        "url",
        "address",
        "endpoint",
        "server",
        "webhook",
        "email",
        "site",
        "domain",
        "inbox",
        "attacker",
    ),
    "visit-url-with-data": ("=",),
    "decode-and-follow": (
        "follow",
        "execute",
        "obey",
        " do",
        "run",
        "act on",
        "carry out",
        "perform",
        "comply",
        "apply",
        "complete",
        "answer",
        "respond",
    ),
    "encoded-instructions": ("instruction", "orders", "command", "task", "prompt"),
    "fr-reveal-prompt": ("systeme", "initial", "d'origine", "origin", "cache", "secret", "interne", "donne"),
    "fr-jailbreak": ("sans", "mode"),
    "de-reveal-prompt": ("prompt", "nachricht", "anweisung", "regeln"),
}


def default_rules() -> RuleSet:
    """The built-in rule set (English and the main other languages)."""
    rules = [*_english(), *_multilingual()]
    unknown = set(_REQUIRES) - {r.name for r in rules}
    if unknown:
        raise ValueError(f"prefilter conditions for unknown rules: {sorted(unknown)}")
    return RuleSet([replace(r, requires=_REQUIRES.get(r.name, ())) for r in rules])
