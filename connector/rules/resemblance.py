"""Which duty a guardian's message reads like, learnt from the labelled messages: a net under the keyword rules
that may only ask a person to read the message, never open a case.

Measured on messages written blind to the keyword rules (``tests/corpus/README.md``), half of those about staff and
about a child who cannot face school matched no rule at all: a keyword list reaches what its writers have seen. The
law's duties (§12-4, §12-5, and the absence plan's school refusal) need recall first, so under the rules lies a
reading that generalises: a logistic regression (scikit-learn) over the character and word n-grams of the labelled
tuning messages (``corpus/guardian_messages.jsonl``), which sees "lærern dro han etter armen" as close to what it was
shown even when no phrase matches, typos and dialect included.

What it may do is narrow (``rules.classify``): when no rule matched, or only a weak hint of a category without a
duty, and no look-alike was recognised ("dying of laughter"), a message whose likeness to a duty category reaches
that category's threshold (:data:`THRESHOLDS`) becomes a **weak** classification of it, rule
``resemblance.<category>``: the contact teacher is asked to read it (``escalation.read_message``), no case opens,
no deadline or alert follows. Its reason is the evidence a person can check: the message reads like
the school's labelled examples of that kind. Over what the rules found it may read a duty only where it is surer
(:func:`overrule_thresholds`: which duties, from what likeness), again weakly; and it may make a sure case match
weak where the message reads more like the harmless examples (:data:`HARMLESS`). It never opens a case, and never
closes one.

:data:`THRESHOLDS` and :data:`STRENGTH` were chosen by five-fold cross-validation on the tuning messages only
(``python -m bench.classify --cross-validate`` prints the figures): at 0.30, 96–97 % of the duty messages left out
of a fold reach their category, and 5–6 % of the harmless messages and absence notices left out would reach it
(most harmless tuning messages are look-alikes written to resemble a duty; a sick note a rule files, and a message
with a recognised look-alike, are never given to the net); school refusal's 0.50 catches 87 % and flags 2 %. The
held-out split was never used to choose them. Training takes about a second, once per process, on first use; the
result is deterministic (the same messages give the same model).

Plain functions over plain data, like every rule: the text exists only inside the call.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
import tempfile
import threading
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

TUNING = Path(__file__).parent / "corpus" / "guardian_messages.jsonl"
DUTIES = ("staff_involved", "school_environment", "school_refusal")
# Each duty's likeness from which a person reads the message (see the module's docstring). School refusal is said in
# everyday words ("vil ikke", "ut døra", "skolen"): at 0.30 its net caught plain logistics ("Han løp ut døra etter
# skolen"), so it asks for more.
THRESHOLDS = {"staff_involved": 0.30, "school_environment": 0.30, "school_refusal": 0.50}
# Where the keyword rules found something else, the net's reading of a duty stands from this likeness (weak: a person
# reads it), but only towards the duties :func:`overrule_thresholds` names for what the rules found. At first: any
# duty over a lesser case;
# only school refusal over an absence notice (a notice is recorded: a person reading it instead must be worth it);
# staff or school refusal over a §12-4 hint; over a sure §12-4 match only staff, and only where a staff rule fired too,
# if only as a hint (a teacher who reports what pupils did, "Kontaktlæreren fortalte at Emil blir dyttet", reads like
# staff to the net), never school refusal (bullying that keeps a child home starts the §12-4 duties: ``order`` in
# keywords.yaml). Chosen on 480 messages written blind to the rules by three authors (2026-12-01c), measured before
# they joined the tuning split, with the net trained without them and the rules as they were, before the two
# conditions over §12-4 (added for the two cases named, and costing some of the staff gain): school environment
# 75 -> 79 of 85, staff 101 -> 114 of 145, school refusal 87 -> 111 of 130, and the same 13 of 80 notices and harmless
# messages reaching a duty, all by the rules (0.4 over a notice gave refusal 4 more with none lost, but notices are by
# far the commonest message; 0.7 caught fewer).
# A hint of one duty may be read as another at the same threshold (:func:`overrule_thresholds`). Measured on messages
# each net had not learnt from (the fifth round, tf-th, with the net before it; the sixth, tj, likewise): over a hint
# of school refusal, staff 142 -> 145 of 165 and 41 -> 43 of 50, school refusal 119 of 135 unchanged; over a staff
# hint, §12-4 +1 (tf-th), +3 of 60 (tj) and +1 of 85 (ta-tc, with acc4490's net), no staff message lost.
OVERRULE = 0.5
# Over a sure match of §12-4 or an absence notice, towards a duty no rule named (not even as a hint), the net's
# reading stands only from this likeness: a teacher's own act told with words the staff rules do not know ("la ut et
# bilde av ham", "sendte ham ut av hytta"), which the §12-4 rules read as pupils' doing, or a teacher's act told
# beside a sore throat. Chosen on three rounds of tuning messages, each read by the net and the rules from before it
# joined the tuning split (ta-tc with acc4490, tf-th with 89417b4, tj with 30de8cb): staff over a sure §12-4 match
# 0 + 6 + 4 more, no §12-4 message lost (0.5: one lost; 0.8: 2 fewer gained); staff or §12-4 over a notice 1 more
# (0.6: a school refusal message read as staff), no notice lost.
OVERRULE_SURE = 0.7
# Over a lesser case the rules are sure of (the guardian's own child, several children), any duty from this likeness:
# a child "lei seg" who comes home without his shoes again is §12-4 first. Measured on four tuning rounds, each read
# by the net and the rules from before it joined (ta-tc, tf-th, tj, tk-tl), against OVERRULE: 7 more duty messages
# read right, 1 message of the child's own case read as a duty (0.3 and 0.35: 1 more of each).
OVERRULE_LESSER = 0.4


def overrule_thresholds(found: str, sure: bool, named: Iterable[str] = (), messenger: bool = False
                        ) -> dict[str, float]:
    """Towards which duties, and from what likeness, the net may read a message over what the rules found.

    ``found`` is the rules' category, ``sure`` whether a strong rule found it, ``named`` the duties some rule of any
    strength fired for. Any duty over a lesser case (at :data:`OVERRULE_LESSER`); over a hint of one duty, the
    other duties at :data:`OVERRULE` (a hint of school refusal, "etter det vil ho ikkje på symjing", may be what an
    adult or other pupils did; a staff hint, "sjåføren har ikke sett det", may be a pupil's act an adult missed);
    over a sure §12-4 match only staff (never school refusal: bullying that keeps a child home starts the §12-4
    duties, ``order`` in keywords.yaml), at
    :data:`OVERRULE` where a staff rule fired too, else at :data:`OVERRULE_SURE` unless a member of staff is named as
    the ``messenger`` who told the parents or saw (``words.staff_told``: the net reads "the teacher" and "a push"
    together as staff's doing, "Kontaktlæreren fortalte at Emil blir dyttet"); over a sure notice school refusal
    (a notice is recorded: a person reading it instead must be worth it), and staff or §12-4 at
    :data:`OVERRULE_SURE`; over a sure match of staff or school refusal, nothing.
    """
    if found == "absence_notice":
        return {"school_refusal": OVERRULE, "staff_involved": OVERRULE_SURE, "school_environment": OVERRULE_SURE}
    if found not in DUTIES:
        return dict.fromkeys(DUTIES, OVERRULE_LESSER)
    if not sure:
        return {duty: OVERRULE for duty in DUTIES if duty != found}
    if found == "school_environment":
        if "staff_involved" in named:
            return {"staff_involved": OVERRULE}
        return {} if messenger else {"staff_involved": OVERRULE_SURE}
    return {}


# A case the rules are sure of opens only if the message does not read more like the harmless ones than like that
# case: where the likeness of "other" and absence notices together reaches this and passes the likeness of the
# category the rules found (:func:`reads_harmless`), the sure match is made weak (a person reads it; no case, no
# deadline). Chosen on the 450 messages of the fifth round (2026-12-01d) with the rules as they were before it and
# the net trained without them: of their sure case matches, 5 of the 6 on harmless messages and notices were made
# weak and 1 of the 136 on messages of a case (0.3: 3 of 6 and 1; 0.3 without the comparison: 4 of 6 and 1, but
# then "Vakta skal ha dratt Noah i jakka" too).
HARMLESS = 0.2
STRENGTH = 30.0  # the regression's C: how closely it follows the examples (cross-validated with the threshold)
RULE_PREFIX = "resemblance."
_lock = threading.Lock()


def labelled(path: Path = TUNING) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def train(rows: list[dict], strength: float = STRENGTH):
    """A model of the messages' categories: character n-grams (typos, dialect, compounds) and words and word pairs,
    weighted by tf-idf, classes balanced. Imported here: scikit-learn loads only where messages are read."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
                          TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True))
    model = make_pipeline(features, LogisticRegression(C=strength, class_weight="balanced", max_iter=3000))
    return model.fit([row["body"].lower() for row in rows], [row["category"] for row in rows])


def cache_file() -> Path:
    """Where a process keeps the trained net for the next one: ``$CONNECTOR_CACHE_DIR``, else the user's cache
    directory. Named by a digest of the tuning messages, the regression's settings and the scikit-learn and Python
    versions, so a changed corpus or library trains afresh and an old file is simply never read again."""
    import sklearn

    base = os.environ.get("CONNECTOR_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "skoleflyt-connector")
    digest = hashlib.sha256(TUNING.read_bytes())
    digest.update(f"{STRENGTH}|{sklearn.__version__}|{sys.version_info[:2]}".encode())
    return Path(base) / f"resemblance-{digest.hexdigest()[:20]}.pickle"


@lru_cache(maxsize=1)
def _model():
    """The net: read from :func:`cache_file` when a process on this machine trained it before (a fraction of a
    second), else trained (several seconds on 3,000 messages) and written there for the next process. The file is
    the service user's own (a directory only it may write), as trusted as the code; one that cannot be read is
    trained over."""
    path = cache_file()
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)
    except Exception:  # noqa: BLE001 - a missing, cut-short or foreign file alike: train over it
        pass
    fitted = train(labelled())
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".resemblance-", delete=False) as handle:
            pickle.dump(fitted, handle)
        os.replace(handle.name, path)  # whole or not at all: two processes training at once both write a whole file
    except OSError:
        pass  # a read-only home: every process trains its own
    return fitted


def warm() -> None:
    """Train or load the net now, at a process's start, so that no guardian's message waits for it (the door's
    platforms give up on a webhook after seconds)."""
    model()


def model():
    with _lock:  # one training per process, even when the first messages arrive together
        return _model()


def probabilities(text: str, fitted=None) -> dict[str, float]:
    """Every category's likeness (probability, 0–1) for ``text``."""
    fitted = fitted or model()
    return {str(category): float(p) for category, p in zip(fitted.classes_, fitted.predict_proba([text.lower()])[0])}


def likeness(text: str, fitted=None) -> dict[str, float]:
    """Each duty category's likeness (probability, 0–1) for ``text``."""
    return {category: p for category, p in probabilities(text, fitted).items() if category in DUTIES}


def reads_harmless(text: str, category: str, fitted=None, known: dict[str, float] | None = None) -> bool:
    """``text`` reads like the labelled harmless messages and absence notices together (from :data:`HARMLESS`) more
    than like ``category``. ``known``: its :func:`probabilities`, if already read."""
    found = known if known is not None else probabilities(text, fitted)
    harmless = found.get("other", 0.0) + found.get("absence_notice", 0.0)
    return harmless >= HARMLESS and harmless > found.get(category, 0.0)


def closest_duty(text: str, thresholds: dict[str, float] | None = None, fitted=None,
                 known: dict[str, float] | None = None) -> str | None:
    """The duty category ``text`` reads most like among those whose likeness reaches their threshold; else ``None``.
    ``known``: its :func:`probabilities`, if already read."""
    thresholds = THRESHOLDS if thresholds is None else thresholds
    found = known if known is not None else probabilities(text, fitted)
    scores = {c: p for c, p in found.items() if c in DUTIES and p >= thresholds.get(c, 2.0)}
    return max(scores, key=scores.get) if scores else None
