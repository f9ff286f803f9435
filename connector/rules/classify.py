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

A rule fires when one of its ``any`` phrases matches, and, if it has ``with`` phrases, one of those matches too,
anywhere in the message ("a staff word" with "an insult", however far apart), and none of its ``unless`` phrases.

Look-alikes are handled twice: ``ignore`` phrases are blanked out before any rule sees the text ("syk av latter"
is not illness), and a rule's ``unless`` phrases stop that rule only ("blir mobbet" is not a teacher bullying).
When rules of several categories match, ``order`` decides: the most serious kind of case wins.

Guardians write on phones, in dialect and with typos ("sykk", "trakasert", "lærern", "ho e dårle"), so a second,
tolerant reading of the text follows the exact one. Each word that no phrase knows is replaced by the phrase word it
stands for: by its lemma (``simplemma``: "plager" is "plage", as is the keyword "plaget"), by its two parts when it is
a Norwegian compound one of whose parts is a phrase word ("lærerassistenten" is "lærer assistenten", "friminuttsvakta"
"friminutts vakta": a compound says more than either part, so this too is only a hint), or, for a word that is in
no dictionary (a typo), by the closest phrase word within one or two edits (``rapidfuzz``); the same rules then run
on that reading. A rule that fires only on the tolerant reading, or a rule marked ``strength: weak`` (a phrase that
hints at a category without saying it: "vi foreldre"), gives a **weak** classification; an exact match of a strong
rule gives a **strong** one. A strong match may open a case with deadlines, reminders and alerts; a weak one only
asks the contact teacher to read the message (``escalation.read_message``). A rule marked ``tolerant: strong``
is as sure on the tolerant reading as on the exact one: the absence-notice rules are, because a misspelt sick note
("Emma er sykk", "ho e dårle") is still the guardian reporting an absence, and recording it opens nothing; a read
task for every typo in the commonest message a school gets would bury the few that matter. The categories that
open a case or start a duty (``CASE_OPENING``) may not be marked so. Recall comes first for the categories
that carry duties (``DUTY_CATEGORIES``): a weak match of one of them outranks a strong match of a lesser category,
so the message is read by a person instead of being filed as, say, an absence notice (a strong match of another
duty category stands: that already starts the law's route).

Under the rules lies a net (``rules.resemblance``): where no rule found a duty and nothing sure was found (no rule,
or only a weak hint of a lesser category), and no look-alike was recognised, a message that reads like the labelled
examples of a duty category becomes a weak classification of it (rule ``resemblance.<category>``): a person reads
it, no case opens. Where the rules found something else, the net overrules them only where it is surer, and only
towards a duty (``resemblance.overrule_thresholds``): a teacher's remark told as the child's bad day, or a teacher
who waved off a child's report of bullying, is read as staff; "not ill, she could not make herself go" as school
refusal, not as a sick note. And no case opens on a sure match of a shipped rule when the
message laughs ("haha", a laughing face) or reads more like the harmless examples than like that case
(``resemblance.HARMLESS``): the match is made weak, and a person reads it. Measured on messages written blind to the
rules, a keyword list alone missed half of those about staff and about school refusal (``tests/corpus/README.md``).

The message text exists only inside this function's call: nothing here stores, logs or returns it.
"""
from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

from connector.contract.terms import CATEGORIES
from connector.rules import resemblance

KEYWORDS_FILE = Path(__file__).parent / "keywords.yaml"

RULE_LANGUAGES = ("nb", "nn", "en")
PLATFORM_RULE = "platform.category"  # the rule id recorded when the platform's own category decided
NO_RULE = "none"  # nothing matched: category ``other``
ACCUSED_LEADERSHIP = "school_leadership"
STRONG, WEAK = "strong", "weak"  # a classification's confidence; a rule's ``strength``
# The categories that carry a legal duty (§12-4, §12-5, and the absence plan's school refusal): a weak hint of one of
# them outranks a strong match of any other category, so a person reads the message.
DUTY_CATEGORIES = ("staff_involved", "school_environment", "school_refusal")
# What a strong match starts besides recording a fact: a case, or the absence plan's urgent school-refusal alert.
# A rule of these categories is never sure on the tolerant reading (``tolerant: strong`` is refused for them).
CASE_OPENING = ("staff_involved", "school_environment", "school_refusal", "several_children_case", "own_child_case")


class RuleError(ValueError):
    """A keyword rule that cannot be used; the message names the rule or list, for ``check-config``."""


@dataclass(frozen=True)
class Classification:
    category: str
    rule_id: str
    # For ``staff_involved``: "school_leadership" when a leadership rule matched (the school owner is told instead
    # of the principal), otherwise None.
    accused: str | None = None
    # "strong": an exact match of a strong rule (or the platform's own category): a case may open.
    # "weak": only a hint (a typo, a dialect form, a ``strength: weak`` rule): a person reads the message first.
    confidence: str = STRONG


@dataclass(frozen=True)
class _Rule:
    id: str
    category: str
    lang: str
    any: tuple[re.Pattern, ...]
    unless: tuple[re.Pattern, ...]
    accused: str | None
    strength: str = STRONG
    with_: tuple[re.Pattern, ...] = ()  # if given, one of these must match too, anywhere in the message
    # How sure a match on the tolerant reading is: weak by default; ``tolerant: strong`` for a rule whose category
    # opens nothing on its own (an absence notice only records what the guardian reported).
    tolerant: str = WEAK


@dataclass(frozen=True)
class Rules:
    """Compiled keyword rules: build with :func:`load_rules`, never by hand."""

    order: tuple[str, ...]
    ignore: tuple[re.Pattern, ...]
    rules: tuple[_Rule, ...]
    escalation_request: tuple[_Rule, ...]
    vocabulary: "Vocabulary" = field(default=None, compare=False)  # type: ignore[assignment]
    # ``words.staff_told``: a member of staff named as the one who told or saw (see resemblance.overrule_thresholds)
    told: tuple[re.Pattern, ...] = ()

    def ids(self) -> set[str]:
        return {rule.id for rule in self.rules + self.escalation_request}


# --- Text and phrases ----------------------------------------------------------------------------------------------


# Laughing faces are words here: "haha" (rules may name it: "haha*"), so a message that laughs is read as laughing
LAUGHING_FACES = "😂🤣😅😆😄😁😹🙈😜😝"
LAUGHTER = ("haha", "hehe", "hihi", "lol")


def normalise(text: str) -> str:
    """Lowercase words separated by single spaces: punctuation, digits' dots and line breaks all become one space.

    Letters and digits of any script count as word characters, so æ, ø and å stay inside their words; a laughing face
    becomes the word "haha".
    """
    chars = [" haha " if ch in LAUGHING_FACES else ch if ch.isalnum() else " " for ch in text.lower()]
    return " ".join("".join(chars).split())


def laughs(clean: str) -> bool:
    """The message laughs ("haha", "hehe", "lol", a laughing face): it tells a story, it does not report a case."""
    return any(word.startswith(LAUGHTER) for word in clean.split(" "))


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


@lru_cache(maxsize=1)
def _shipped_ids() -> frozenset[str]:
    return frozenset(rule["id"] for rule in _shipped()["rules"])


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
    unknown = set(raw) - {"id", "category", "lang", "any", "with", "unless", "accused", "strength", "tolerant"}
    if unknown:
        raise RuleError(f"rule {rule_id}: unknown key(s) {', '.join(sorted(unknown))}")
    if raw.get("category") not in categories:
        raise RuleError(f"rule {rule_id}: category must be one of {', '.join(categories)}")
    if raw.get("lang") not in RULE_LANGUAGES:
        raise RuleError(f"rule {rule_id}: lang must be one of {', '.join(RULE_LANGUAGES)}")
    if raw.get("accused") not in (None, ACCUSED_LEADERSHIP):
        raise RuleError(f"rule {rule_id}: accused may only be {ACCUSED_LEADERSHIP}")
    if raw.get("strength", STRONG) not in (STRONG, WEAK):
        raise RuleError(f"rule {rule_id}: strength must be {STRONG} or {WEAK}")
    if raw.get("tolerant", WEAK) not in (STRONG, WEAK):
        raise RuleError(f"rule {rule_id}: tolerant must be {STRONG} or {WEAK}")
    if raw.get("tolerant") == STRONG and raw.get("category") in CASE_OPENING:
        raise RuleError(f"rule {rule_id}: a typo may not open a case: tolerant: {STRONG} is only for "
                        f"{', '.join(c for c in categories if c not in CASE_OPENING)}")
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
            strength=raw.get("strength", STRONG),
            with_=tuple(compile_phrase(p, words, gap) for p in raw.get("with") or ()),
            tolerant=raw.get("tolerant", WEAK),
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
    try:
        told = tuple(compile_phrase(p, words, gap) for p in words.get(STAFF_TOLD) or ())
    except RuleError as exc:
        raise RuleError(f"word list {STAFF_TOLD}: {exc}") from None
    return Rules(order=order, ignore=ignore, rules=tuple(rules), escalation_request=tuple(requests),
                 vocabulary=Vocabulary.of(data), told=told)


STAFF_TOLD = "staff_told"  # the word list of phrases naming staff as messengers (keywords.yaml)
OVERRIDE_KEYS = ("rules", "disabled", "ignore", "words")  # what ``merged`` reads of a school's plan


def load_rules(overrides: Mapping[str, Any] | None = None) -> Rules:
    """The compiled rules for a school's plan settings (``escalation.intake``); compiled once per distinct plan
    (an empty setting and a missing one are the same plan), since compiling them takes a good second."""
    overrides = overrides or {}
    key = {name: overrides.get(name) or ({} if name == "words" else []) for name in OVERRIDE_KEYS}
    return _load_cached(json.dumps(key, sort_keys=True))


@lru_cache(maxsize=64)
def _load_cached(overrides_json: str) -> Rules:
    return compile_rules(merged(json.loads(overrides_json)))


# --- The tolerant reading ------------------------------------------------------------------------------------------

LEMMA_LANGUAGES = ("nb", "nn")  # simplemma's dictionaries for the lemma of a word no phrase knows
KNOWN_LANGUAGES = ("nb", "nn", "en")  # a word one of these dictionaries knows is no typo: it is never fuzzed
MIN_FUZZY_LENGTH = 4  # shorter words are too easily one edit from another word ("han", "hun", "ham")
# A compound's parts ("lærer|assistenten", "friminutt|s|vakta"): the modifier's and the head's least lengths, and the
# letters that may link them
MIN_MODIFIER, MIN_HEAD = 4, 3
COMPOUND_LINKS = "se"
# Keyboards without æ, ø, å: "laerer", "doera", "paa"
_ASCII_SPELLINGS = (("ae", "æ"), ("oe", "ø"), ("aa", "å"))
INFLECTION = 3  # letters an inflection adds to a word: "-en", "-ene", "-et", "-er"


def _max_edits(word: str) -> int:
    return 1 if len(word) <= 6 else 2


def _phrase_words(phrase: str) -> list[str]:
    return [t for t in str(phrase).lower().split() if t != ".." and not t.startswith("@")]


class Vocabulary:
    """The words the rules' phrases are made of, and the way from any word of a message to one of them.

    ``canonical`` maps a word that no phrase matches to the phrase word it stands for, or leaves it as it is:
    first the lemma (a word the dictionary knows: "plager" → "plaget", since both are "plage"), then a compound's
    parts ("lærerassistenten" → "lærer assistenten"; also for a word a ``word*`` matches, when its head is a phrase
    word of its own: "friminuttsvakta" → "friminutts vakta"), then, for a word no
    dictionary knows (a typo), the closest phrase word within one edit (two for words of seven letters or more),
    ties broken alphabetically. Deterministic, and remembered per word: a worker meets the same words again and
    again.
    """

    def __init__(self, literal: frozenset[str], prefixes: tuple[str, ...], suffixes: tuple[str, ...]):
        self.literal = literal
        self.prefixes = prefixes
        self.suffixes = suffixes
        self._sorted = tuple(sorted(w for w in literal if len(w) >= 3 and w.isalpha()))
        self._lemmas: dict[str, str] | None = None
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> "Vocabulary":
        phrases: list[str] = list(data.get("ignore") or ())
        for entries in (data.get("words") or {}).values():
            phrases += entries
        for rule in list(data.get("rules") or ()) + list(data.get("escalation_request") or ()):
            phrases += list(rule.get("any") or ()) + list(rule.get("with") or ()) + list(rule.get("unless") or ())
        literal, prefixes, suffixes = set(), set(), set()
        for phrase in phrases:
            for token in _phrase_words(phrase):
                core = token.strip("*")
                if token.endswith("*") and not token.startswith("*"):
                    prefixes.add(core)
                elif token.startswith("*") and not token.endswith("*"):
                    suffixes.add(core)
                elif not token.startswith("*"):
                    literal.add(core)
        return cls(frozenset(literal), tuple(sorted(prefixes)), tuple(sorted(suffixes)))

    def knows(self, word: str) -> bool:
        return (word in self.literal or any(word.startswith(p) for p in self.prefixes)
                or any(word.endswith(s) for s in self.suffixes))

    def names(self, word: str) -> bool:
        """A ``word*`` of the rules stands for this word up to an inflection ("omgangssyke*": "omgangssyken"), so it is
        no compound to be read in parts ("omgang syken" would escape an ``unless: omgangssyke*``)."""
        return any(word.startswith(p) and len(word) - len(p) <= INFLECTION for p in self.prefixes)

    def canonical(self, word: str) -> str:
        found = self._cache.get(word)
        if found is None:
            if word in self.literal or not word.isalpha():
                found = word
            elif self.names(word):  # a ``word*`` naming this very word, inflected: "omgangssyken" stays one word
                found = word
            elif self.knows(word):  # by a ``word*`` or ``*word``: "friminuttsvakta" is "friminutt*", and a "vakta"
                found = self._compound(word, head_known=True) or word
            else:
                found = self._closest(word)
            with self._lock:
                if len(self._cache) > 50_000:  # bounded: a flood of odd words cannot grow it for ever
                    self._cache.clear()
                self._cache[word] = found
        return found

    def _lemma_index(self) -> dict[str, str]:
        if self._lemmas is None:
            import simplemma

            index: dict[str, str] = {}
            for word in sorted(self.literal):
                if word.isalpha() and len(word) >= MIN_FUZZY_LENGTH:
                    index.setdefault(simplemma.lemmatize(word, lang=LEMMA_LANGUAGES), word)
            self._lemmas = index
        return self._lemmas

    def _closest(self, word: str) -> str:
        if len(word) < MIN_FUZZY_LENGTH:
            return word  # "hun", "kom", "e": too short to tell a typo from another word
        import simplemma

        lemma = simplemma.lemmatize(word, lang=LEMMA_LANGUAGES)
        if lemma != word and self.knows(lemma):
            return lemma
        by_lemma = self._lemma_index().get(lemma)
        if by_lemma is not None:
            return by_lemma
        parts = self._compound(word)
        if parts is not None:
            return parts
        if any(simplemma.is_known(word, lang=lang) for lang in KNOWN_LANGUAGES):
            return word  # a real word that is simply not in any phrase
        spellings = [word] + [word.replace(a, b) for a, b in _ASCII_SPELLINGS if a in word]
        for spelling in spellings[1:]:
            if self.knows(spelling):
                return spelling
        best = min((found for spelling in spellings for found in self._near(spelling)), default=None)
        return best[1] if best is not None else word

    def _compound(self, word: str, head_known: bool = False) -> str | None:
        """A Norwegian compound read as its two parts, "modifier head", when one part is a phrase word and the other
        a phrase word or a word the dictionary knows: "lærerassistenten" → "lærer assistenten", "friminuttsvakta" →
        "friminutts vakta", "febersyk" → "feber syk" (a linking s or e is dropped when the modifier is no word with
        it: "inspeksjons|vakta" → "inspeksjon vakta"). The first split from the left
        wins (the longest head); the modifier has at least ``MIN_MODIFIER`` letters, so "nedslått" stays one word.
        ``head_known``: only a head that is itself a phrase word will do (for a word a ``word*`` already matches)."""
        import simplemma

        def known(part: str) -> bool:
            return self.knows(part) or any(simplemma.is_known(part, lang=lang) for lang in LEMMA_LANGUAGES)

        for cut in range(MIN_MODIFIER, len(word) - MIN_HEAD + 1):
            head = word[cut:]
            modifiers = [word[:cut]] + ([word[:cut - 1]] if word[cut - 1] in COMPOUND_LINKS else [])
            for modifier in modifiers:
                if len(modifier) < MIN_MODIFIER or not (self.knows(head) or (self.knows(modifier) and not head_known)):
                    continue
                if known(head) and known(modifier):
                    return f"{modifier} {head}"
        return None

    def _near(self, word: str):
        """(edits, phrase word) for the phrase words within reach of ``word``: whole words, and the stems of
        ``word*`` and ``*word`` ("trakasert" is one edit from "trakass*", "lærern" from "*lærer")."""
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein

        limit = _max_edits(word)
        match = process.extractOne(word, self._sorted, scorer=Levenshtein.distance, score_cutoff=limit)
        if match is not None:
            yield (match[1], match[0])
        for stem, part in [(p, lambda n: word[:n]) for p in self.prefixes] + [(s, lambda n: word[-n:])
                                                                              for s in self.suffixes]:
            if len(stem) < 5 or len(word) < len(stem) - 1:
                continue
            edits = min(Levenshtein.distance(part(n), stem) for n in (len(stem) - 1, len(stem), len(stem) + 1))
            if edits <= 1:
                yield (edits, stem)


def _blank_ignored(clean: str, rules: Rules) -> str:
    for pattern in rules.ignore:
        clean = pattern.sub("~", clean)
    return clean


_SENTENCE_END = re.compile(r"[.!?:;\n]+")


def _names(text: str) -> set[str]:
    """Words written with a capital inside a sentence: names ("Theo", "Maja"), never read as a typo of a keyword."""
    names: set[str] = set()
    for sentence in _SENTENCE_END.split(text):
        words = normalise_keep_case(sentence).split()
        names.update(word.lower() for word in words[1:] if word[:1].isupper())
    return names


def normalise_keep_case(text: str) -> str:
    return " ".join("".join(ch if ch.isalnum() else " " for ch in text).split())


def _tolerant(text: str, clean: str, rules: Rules) -> str:
    """The text with every word no phrase knows replaced by the phrase word it stands for (see ``Vocabulary``)."""
    vocabulary, names = rules.vocabulary, _names(text)
    words = [word if word == "~" or word in names else vocabulary.canonical(word) for word in clean.split(" ") if word]
    return _blank_ignored(" ".join(words), rules)


# --- Classifying ---------------------------------------------------------------------------------------------------


def _prepared(text: str, rules: Rules) -> str:
    """Normalised text with the look-alikes blanked out; the blank is a word no phrase can match ("~")."""
    return _blank_ignored(normalise(text), rules)


def _fires(rule: _Rule, clean: str) -> bool:
    return (any(p.search(clean) for p in rule.any) and (not rule.with_ or any(p.search(clean) for p in rule.with_))
            and not any(p.search(clean) for p in rule.unless))


def matching_rules(text: str, rules: Rules) -> list[str]:
    """Every rule id that fires on ``text``, exactly or on the tolerant reading (for tests and for an admin tuning
    the rules)."""
    clean = _prepared(text, rules)
    tolerant = _tolerant(text, clean, rules)
    return [rule.id for rule in rules.rules + rules.escalation_request
            if _fires(rule, clean) or _fires(rule, tolerant)]


def _first(rules: Rules, fired) -> _Rule | None:
    """The first rule (by ``order``, then by position) for which ``fired(rule)``."""
    for category in rules.order:
        for rule in rules.rules:
            if rule.category == category and fired(rule):
                return rule
    return None


def classify(text: str, platform_category: str | None, rules: Rules) -> Classification:
    """The message's category, the rule that decided it, and how sure that is (``confidence``).

    With the platform's category, that category stands (strong); the leadership rules are still consulted for a
    ``staff_involved`` message, because who is accused decides whether the principal or the school owner is told.
    """
    clean = _prepared(text, rules)
    tolerant = _tolerant(text, clean, rules)
    if platform_category:
        accused = None
        if platform_category == "staff_involved":
            accused = next((r.accused for r in rules.rules if r.category == "staff_involved" and r.accused
                            and (_fires(r, clean) or _fires(r, tolerant))), None)
        return Classification(platform_category, PLATFORM_RULE, accused)
    found = _by_rules(rules, clean, tolerant)
    read: dict[str, float] = {}  # the net's reading, read once and only if needed; it dies with this call

    def net() -> dict[str, float]:
        if not read:
            read.update(resemblance.probabilities(text))
        return read

    if found.confidence == STRONG and found.category in CASE_OPENING and found.rule_id in _shipped_ids() and (
            laughs(clean) or resemblance.reads_harmless(text, found.category, known=net())):
        # "han ble «mobbet» fordi han hadde brunost 😂", "læreren «kjeftet» fordi ingen husket bursdagen hennes 😂": a
        # parent who laughs, or a message that reads like the harmless ones, tells a story; a person reads it, no
        # case opens on it. A school's own rule is the school's judgment and stands as it wrote it.
        found = Classification(found.category, found.rule_id, found.accused, WEAK)
    if "~" in clean.split(" "):  # a look-alike was recognised ("dying of laughter", "thanks for following up"):
        return found  # the net would take its words at face value
    # The net under the rules (it may only ask a person to read): where the rules found neither a duty nor anything
    # sure, at each duty's own threshold; over what the rules found (a lesser case, an absence notice that reads like
    # school refusal, §12-4 that reads like staff's doing), only where it is surer (resemblance.overrule_thresholds).
    unsure = found.rule_id == NO_RULE or (found.confidence == WEAK and found.category not in DUTY_CATEGORIES)
    if unsure:
        duty = resemblance.closest_duty(text, known=net())
    else:
        named, messenger = [], False  # only a sure §12-4 match asks (resemblance.overrule_thresholds)
        if found.category == "school_environment" and found.confidence != WEAK:
            named = ["staff_involved"] if _any_fires(rules, "staff_involved", clean, tolerant) else []
            messenger = any(p.search(clean) for p in rules.told)
        thresholds = resemblance.overrule_thresholds(found.category, found.confidence != WEAK, named, messenger)
        duty = resemblance.closest_duty(text, thresholds, known=net()) if thresholds else None
    if duty is not None:
        return Classification(duty, resemblance.RULE_PREFIX + duty, None, WEAK)
    return found


def _any_fires(rules: Rules, category: str, clean: str, tolerant: str) -> bool:
    """Some rule of ``category``, of any strength, fires on the text or its tolerant reading."""
    return any(rule.category == category and (_fires(rule, clean) or _fires(rule, tolerant)) for rule in rules.rules)


def _by_rules(rules: Rules, clean: str, tolerant: str) -> Classification:
    """What the keyword rules say (see :func:`classify`)."""
    exact = _first(rules, lambda rule: rule.strength == STRONG and _fires(rule, clean))
    typo = _first(rules, lambda rule: rule.strength == STRONG and _fires(rule, tolerant))
    hint = _first(rules, lambda rule: rule.strength == WEAK and (_fires(rule, clean) or _fires(rule, tolerant)))

    def outranks(rule: _Rule | None, other: _Rule | None, over_duty: bool) -> bool:
        """``rule`` is a duty category above ``other`` (``over_duty``: even when ``other`` is a duty too)."""
        return rule is not None and rule.category in DUTY_CATEGORIES and (other is None or (
            (over_duty or other.category not in DUTY_CATEGORIES)
            and rules.order.index(rule.category) < rules.order.index(other.category)))

    # A misspelt word of a strong rule ("Vikarn slo han") outranks an exact match of a lesser category, duty or not;
    # a hint (a ``strength: weak`` rule) outranks only categories without a duty: a strong §12 match stands.
    for rule, over_duty in ((typo, True), (hint, False)):
        if outranks(rule, exact, over_duty):
            return Classification(rule.category, rule.id, rule.accused, WEAK)
    if exact is not None:
        return Classification(exact.category, exact.id, exact.accused)
    if typo is not None:
        return Classification(typo.category, typo.id, typo.accused, typo.tolerant)
    if hint is not None:
        return Classification(hint.category, hint.id, hint.accused, WEAK)
    return Classification("other", NO_RULE)


def escalation_request(text: str, rules: Rules) -> str | None:
    """The id of the rule by which a guardian's message asks for the case to be lifted, if any."""
    clean = _prepared(text, rules)
    return next((rule.id for rule in rules.escalation_request if _fires(rule, clean)), None)
