"""Precision and recall of the classification on the labelled corpus (tests/corpus/README.md).

Two files: ``guardian_messages.jsonl`` is the ``tuning`` split, which the keywords are tuned on and which must be
classified right outright; ``held_out.jsonl`` is the ``held_out`` split, written blind to the rules by another
author and only ever measured. Until that file exists the held-out tests are skipped (they say so), not passed.
The tables are printed (``pytest -s``, or see the captured output of a failure). Targets from issue 18: recall of
at least 95 % on the categories that carry a legal duty (a weak match counts: a person reads the message), and no
harmless message opening a case (a strong match to a case category).
"""
from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest

from connector.contract.terms import CATEGORIES
from connector.rules.classify import DUTY_CATEGORIES, STRONG, classify, compile_rules, load_rules, merged
from connector.rules.escalation import CASE_CATEGORIES

CORPUS = {"tuning": Path(__file__).parent.parent / "connector" / "rules" / "corpus" / "guardian_messages.jsonl",
          "held_out": Path(__file__).parent / "corpus" / "held_out.jsonl"}
RULES = load_rules()
RECALL_TARGET = 0.95
NO_HELD_OUT = ("no held-out split yet: tests/corpus/held_out.jsonl (written blind to the rules, tests/corpus/README.md) "
               "has not been added; the old held-out messages were looked at and are tuning now")


def messages(split: str) -> list[dict]:
    """The split's messages; every row of a split's file must carry that split."""
    path = CORPUS[split]
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert {row["split"] for row in rows} <= {split}, f"{path.name} holds rows of another split"
    return rows


def held_out() -> list[dict]:
    """The held-out split, or a skip naming why there is none."""
    if not CORPUS["held_out"].exists():
        pytest.skip(NO_HELD_OUT)
    return messages("held_out")


@lru_cache(maxsize=None)
def classified(split: str) -> tuple:
    """Each message of the split with how the shipped rules classify it (once per test run: the net makes a
    reading cost about a millisecond, and several tests read every message)."""
    return tuple((row, classify(row["body"], None, RULES)) for row in messages(split))


def measure(split: str) -> dict[str, dict[str, float]]:
    tp, fp, n, strong = Counter(), Counter(), Counter(), Counter()
    for row, result in classified(split):
        n[row["category"]] += 1
        if result.category == row["category"]:
            tp[row["category"]] += 1
            strong[row["category"]] += result.confidence == STRONG
        else:
            fp[result.category] += 1
    return {c: {"n": n[c], "precision": tp[c] / (tp[c] + fp[c]) if tp[c] + fp[c] else 1.0,
                "recall": tp[c] / n[c] if n[c] else 1.0, "strong": strong[c] / n[c] if n[c] else 1.0}
            for c in CATEGORIES}


def table(split: str) -> str:
    lines = [f"{split}: {'category':<24}{'n':>4}{'precision':>11}{'recall':>8}{'strong':>8}"]
    for category, m in measure(split).items():
        lines.append(f"{'':{len(split) + 2}}{category:<24}{m['n']:>4}{m['precision']:>11.2f}{m['recall']:>8.2f}"
                     f"{m['strong']:>8.2f}")
    return "\n".join(lines)


def test_the_corpus_is_large_and_varied():
    rows = messages("tuning") + messages("held_out")
    assert len(rows) >= 300
    assert len({row["id"] for row in rows}) == len(rows) and len({row["body"] for row in rows}) == len(rows)
    assert {row["category"] for row in messages("tuning")} == set(CATEGORIES)
    assert {row["lang"] for row in rows} == {"nb", "nn", "en"}
    assert {row["kind"] for row in rows} == {"plain", "typo", "dialect", "lookalike"}


def test_the_held_out_split_covers_every_category():
    assert {row["category"] for row in held_out()} == set(CATEGORIES)


def test_print_precision_and_recall_per_category(capsys):
    with capsys.disabled():
        print("\n" + (table("held_out") if messages("held_out") else f"held_out: none ({NO_HELD_OUT})")
              + "\n" + table("tuning"))


# Where the held-out recall still falls short of the target (it is printed above): strict, so the day it is met
# this test fails and the mark must go. The history of these figures is in tests/corpus/README.md. Measured on the
# nine splits written blind to the rules (2026-12-01 and -02, fifteen authors), every duty reaches 95 % (staff 566 of
# 592, school environment 545 of 572, school refusal 435 of 442), with a thin margin: a new split's first reading
# has been 0.90-0.97, and the figures move by a few messages each time the net learns a new tuning round. Should a
# category fall short again, it goes back here: category -> "n of m held-out messages".
SHORT_OF_TARGET: dict[str, str] = {}


@pytest.mark.parametrize("category", [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=f"recall below 95 %: {SHORT_OF_TARGET[c]}"))
    if c in SHORT_OF_TARGET else c for c in DUTY_CATEGORIES])
def test_held_out_recall_on_the_duty_categories(category):
    held_out()
    assert measure("held_out")[category]["recall"] >= RECALL_TARGET, table("held_out")


@pytest.mark.parametrize("split", ["tuning", "held_out"])
def test_no_harmless_message_opens_a_case(split):
    if split == "held_out":
        held_out()
    opened = [row["id"] for row, result in classified(split) if row["category"] == "other"
              and result.category in CASE_CATEGORIES and result.confidence == STRONG]
    assert opened == []


def test_every_tuning_message_gets_its_label():
    wrong = [(row["id"], row["category"], result.category) for row, result in classified("tuning")
             if result.category != row["category"]]
    assert wrong == []


def test_classifying_is_deterministic():
    """The same message gets the same category, rule and confidence, cold (the first reading fills the per-word
    memory) or warm, and with freshly compiled rules. How fast it is: ``python -m bench.classify``."""
    read = classified("tuning") + classified("held_out")  # the first reading in this run
    bodies, first = [row["body"] for row, _ in read], [result for _, result in read]
    assert [classify(body, None, RULES) for body in bodies] == first
    fresh = compile_rules(merged(None))
    assert [classify(body, None, fresh) for body in bodies] == first
