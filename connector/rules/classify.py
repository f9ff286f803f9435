"""Which kind of case a guardian's message is: keyword rules in bokmål, nynorsk and English, kept as data.

The platform's own ``category`` wins when it sends one; otherwise the message's subject and body are matched
against the rules in ``keywords.yaml`` (plus a school's additions from its plan). A school must be able to answer
"why was this message a bullying case?", so every classification names the one rule that decided it, and the rules
are phrases a person can read, not a model.

Matching works on words, never on substrings: the text is lowercased and reduced to words separated by single
spaces, so "syk" does not match "sykkel". A phrase is a sequence of words where

* ``word*`` matches any word starting with ``word`` (``mobb*``: mobbet, mobbing), ``*word`` any word ending with it;
* ``@name`` matches any entry of the named word list (an entry may itself be several words);
* ``..`` matches up to ``gap_words`` words (default 3): ``@staff .. @staff_act`` finds "lærerne skal ha lugget".

Look-alikes are handled twice: ``ignore`` phrases are blanked out before any rule sees the text ("syk av latter"
is not illness), and a rule's ``unless`` phrases stop that rule only ("blir mobbet" is not a teacher bullying).
When rules of several categories match, ``order`` decides: the most serious kind of case wins.

The message text exists only inside this function's call: nothing here stores, logs or returns it.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

from connector.contract.terms import CATEGORIES

KEYWORDS_FILE = Path(__file__).parent / "keywords.yaml"

RULE_LANGUAGES = ("nb", "nn", "en")
PLATFORM_RULE = "platform.category"  # the rule id recorded when the platform's own category decided
NO_RULE = "none"  # nothing matched: category ``other``
ACCUSED_LEADERSHIP = "school_leadership"


class RuleError(ValueError):
    """A keyword rule that cannot be used; the message names the rule or list, for ``check-config``."""


@dataclass(frozen=True)
class Classification:
    category: str
    rule_id: str
    # For ``staff_involved``: "school_leadership" when a leadership rule matched (the school owner is told instead
    # of the principal), otherwise None.
    accused: str | None = None


@dataclass(frozen=True)
class _Rule:
    id: str
    category: str
    lang: str
    any: tuple[re.Pattern, ...]
    unless: tuple[re.Pattern, ...]
    accused: str | None


@dataclass(frozen=True)
class Rules:
    """Compiled keyword rules: build with :func:`load_rules`, never by hand."""

    order: tuple[str, ...]
    ignore: tuple[re.Pattern, ...]
    rules: tuple[_Rule, ...]
    escalation_request: tuple[_Rule, ...]

    def ids(self) -> set[str]:
        return {rule.id for rule in self.rules + self.escalation_request}


# --- Text and phrases ----------------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Lowercase words separated by single spaces: punctuation, digits' dots and line breaks all become one space.

    Letters and digits of any script count as word characters, so æ, ø and å stay inside their words.
    """
    chars = [ch if ch.isalnum() else " " for ch in text.lower()]
    return " ".join("".join(chars).split())


def _word_pattern(token: str) -> str:
    if token == "*":
        raise RuleError("a lone '*' would match any word")
    head, tail = token.startswith("*"), token.endswith("*")
    core = token.strip("*")
    if not core or not normalise(core) == core or " " in core:
        raise RuleError(f"{token!r} is not a word (use lowercase letters and digits, '*' only at either end)")
    return ("[^ ]*" if head else "") + re.escape(core) + ("[^ ]*" if tail else "")


MAX_LIST_DEPTH = 3  # a word list may use another ("kalte @object_nb"), but not endlessly or in a circle


def _phrase_pattern(phrase: str, words: Mapping[str, list[str]], gap: int, depth: int = 0) -> str:
    tokens = str(phrase).lower().split()
    if not tokens or tokens[0] == ".." or tokens[-1] == "..":
        raise RuleError(f"phrase {phrase!r} is empty or starts or ends with '..'")
    parts: list[str] = []
    pending_gap = False
    for token in tokens:
        if token == "..":
            if pending_gap:
                raise RuleError(f"phrase {phrase!r} has two '..' in a row")
            pending_gap = True
            continue
        if token.startswith("@"):
            if depth >= MAX_LIST_DEPTH:
                raise RuleError(f"word list {token} is nested too deeply (a list that uses itself?)")
            entries = words.get(token[1:])
            if not entries:
                raise RuleError(f"phrase {phrase!r} uses an unknown or empty word list {token}")
            piece = "(?:" + "|".join(_phrase_pattern(e, words, gap, depth + 1) for e in entries) + ")"
        else:
            piece = _word_pattern(token)
        if parts:
            parts.append(f"(?: [^ ]+){{0,{gap}}} " if pending_gap else " ")
        parts.append(piece)
        pending_gap = False
    return "".join(parts)


def compile_phrase(phrase: str, words: Mapping[str, list[str]] | None = None, gap: int = 3) -> re.Pattern:
    """A phrase as a regular expression over normalised text, anchored at word boundaries."""
    return re.compile(r"(?<![^ ])" + _phrase_pattern(phrase, words or {}, gap) + r"(?![^ ])")


# --- Rules ---------------------------------------------------------------------------------------------------------


def defaults() -> dict[str, Any]:
    """The shipped rules, as data (a fresh copy each call, so callers may change it)."""
    return copy.deepcopy(_shipped())


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(KEYWORDS_FILE.read_text(encoding="utf-8"))


def merged(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The shipped rules with a school's plan on top: its ``rules`` come first (so they win within a category),
    ``disabled`` switches shipped rules off by id, ``ignore`` adds look-alikes and ``words`` adds or replaces
    word lists."""
    data = defaults()
    overrides = overrides or {}
    known = {rule["id"] for rule in data["rules"] + data["escalation_request"]}
    unknown = sorted(set(overrides.get("disabled") or ()) - known)
    if unknown:
        raise RuleError(f"disabled: unknown rule id(s) {', '.join(unknown)}")
    disabled = set(overrides.get("disabled") or ())
    extra = list(overrides.get("rules") or ())
    data["rules"] = [r for r in extra if r.get("category") != "escalation_request"] + [
        r for r in data["rules"] if r["id"] not in disabled
    ]
    data["escalation_request"] = [r for r in extra if r.get("category") == "escalation_request"] + [
        r for r in data["escalation_request"] if r["id"] not in disabled
    ]
    data["ignore"] = list(overrides.get("ignore") or ()) + list(data["ignore"])
    data["words"] = {**data["words"], **(overrides.get("words") or {})}
    return data


def _compile_rule(raw: Mapping[str, Any], words, gap: int, categories: Iterable[str]) -> _Rule:
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        raise RuleError(f"a rule has no id: {dict(raw)!r}")
    unknown = set(raw) - {"id", "category", "lang", "any", "unless", "accused"}
    if unknown:
        raise RuleError(f"rule {rule_id}: unknown key(s) {', '.join(sorted(unknown))}")
    if raw.get("category") not in categories:
        raise RuleError(f"rule {rule_id}: category must be one of {', '.join(categories)}")
    if raw.get("lang") not in RULE_LANGUAGES:
        raise RuleError(f"rule {rule_id}: lang must be one of {', '.join(RULE_LANGUAGES)}")
    if raw.get("accused") not in (None, ACCUSED_LEADERSHIP):
        raise RuleError(f"rule {rule_id}: accused may only be {ACCUSED_LEADERSHIP}")
    phrases = raw.get("any") or []
    if not isinstance(phrases, list) or not phrases:
        raise RuleError(f"rule {rule_id}: 'any' must list at least one phrase")
    try:
        return _Rule(
            id=rule_id,
            category=raw["category"],
            lang=raw["lang"],
            any=tuple(compile_phrase(p, words, gap) for p in phrases),
            unless=tuple(compile_phrase(p, words, gap) for p in raw.get("unless") or ()),
            accused=raw.get("accused"),
        )
    except RuleError as exc:
        raise RuleError(f"rule {rule_id}: {exc}") from None


def compile_rules(data: Mapping[str, Any]) -> Rules:
    """Check and compile rules given as data (the shape of ``keywords.yaml``); raises ``RuleError``."""
    gap = data.get("gap_words", 3)
    words = data.get("words") or {}
    for name, entries in words.items():
        if not isinstance(entries, list) or not all(isinstance(e, str) and e.strip() for e in entries):
            raise RuleError(f"word list {name}: expected a list of words or phrases")
    order = tuple(data.get("order") or ())
    if sorted(order) != sorted(c for c in CATEGORIES if c != "other"):
        raise RuleError("order must name every category except 'other', once each")
    rules = [_compile_rule(r, words, gap, order) for r in data.get("rules") or ()]
    requests = [_compile_rule(r, words, gap, ("escalation_request",)) for r in data.get("escalation_request") or ()]
    ids = [r.id for r in rules + requests]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RuleError(f"rule id(s) defined twice: {', '.join(duplicates)}")
    try:
        ignore = tuple(compile_phrase(p, words, gap) for p in data.get("ignore") or ())
    except RuleError as exc:
        raise RuleError(f"ignore: {exc}") from None
    return Rules(order=order, ignore=ignore, rules=tuple(rules), escalation_request=tuple(requests))


def load_rules(overrides: Mapping[str, Any] | None = None) -> Rules:
    """The compiled rules for a school's plan settings (``escalation.intake``); compiled once per distinct plan."""
    return _load_cached(json.dumps(overrides or {}, sort_keys=True))


@lru_cache(maxsize=64)
def _load_cached(overrides_json: str) -> Rules:
    return compile_rules(merged(json.loads(overrides_json)))


# --- Classifying ---------------------------------------------------------------------------------------------------


def _prepared(text: str, rules: Rules) -> str:
    """Normalised text with the look-alikes blanked out; the blank is a word no phrase can match ("~")."""
    clean = normalise(text)
    for pattern in rules.ignore:
        clean = pattern.sub("~", clean)
    return clean


def _fires(rule: _Rule, clean: str) -> bool:
    return any(p.search(clean) for p in rule.any) and not any(p.search(clean) for p in rule.unless)


def matching_rules(text: str, rules: Rules) -> list[str]:
    """Every rule id that fires on ``text`` (for tests and for an admin tuning the rules)."""
    clean = _prepared(text, rules)
    return [rule.id for rule in rules.rules + rules.escalation_request if _fires(rule, clean)]


def classify(text: str, platform_category: str | None, rules: Rules) -> Classification:
    """The message's category and the rule that decided it.

    With the platform's category, that category stands; the leadership rules are still consulted for a
    ``staff_involved`` message, because who is accused decides whether the principal or the school owner is told.
    """
    clean = _prepared(text, rules)
    if platform_category:
        accused = None
        if platform_category == "staff_involved":
            accused = next((r.accused for r in rules.rules
                            if r.category == "staff_involved" and r.accused and _fires(r, clean)), None)
        return Classification(platform_category, PLATFORM_RULE, accused)
    for category in rules.order:
        for rule in rules.rules:
            if rule.category == category and _fires(rule, clean):
                return Classification(category, rule.id, rule.accused)
    return Classification("other", NO_RULE)


def escalation_request(text: str, rules: Rules) -> str | None:
    """The id of the rule by which a guardian's message asks for the case to be lifted, if any."""
    clean = _prepared(text, rules)
    return next((rule.id for rule in rules.escalation_request if _fires(rule, clean)), None)
