"""The pupil hash's layout on Redis: long values in pieces of at most 64 bytes, so the hash stays a compact
listpack under Redis's default ``hash-max-listpack-value``, and nothing above the store ever sees a piece."""
from __future__ import annotations

import pytest

from connector.store.pupils import PIECE, Checkout, day_field, pieces, stored_mapping


def commit(rt, checkout: Checkout) -> None:
    checkout.commit(checkout.transaction())


def long_day(lessons: int) -> str:
    return ";".join(f"L{n:05d}=a0|Kroppsøving og helse|60" for n in range(lessons))  # æøå: pieces cut bytes


@pytest.mark.parametrize("size", [0, 1, PIECE, PIECE + 1, 3 * PIECE, 31 * PIECE + PIECE - 1])
def test_pieces_join_back_to_the_value_and_none_is_longer_than_64_bytes(size):
    value = "ø" + "x" * (size - 2) if size >= 2 else "x" * size  # exactly ``size`` bytes, one letter of two bytes
    assert len(value.encode()) == size
    stored = pieces("d:2026-11-24", value)
    assert all(len(v) <= PIECE and len(k) <= PIECE for k, v in stored.items())
    first = stored["d:2026-11-24"]
    if len(stored) == 1:
        assert first == value.encode()
    else:
        assert first[0] == len(stored) - 1
        joined = first[1:] + b"".join(stored[f"d:2026-11-24#{n}"] for n in range(1, len(stored)))
        assert joined == value.encode()


def test_a_value_too_long_for_31_pieces_is_stored_whole():
    value = "x" * (PIECE * 40)
    assert pieces("s:absence.pattern", value) == {"s:absence.pattern": value.encode()}


def test_long_days_keep_the_hash_a_listpack_and_read_back_whole(rt):
    tenant, student, day = "skole-a", "s-pieces", "2026-11-24"
    key = rt.keys.pupil(tenant, student)
    six, two = long_day(6), long_day(2)
    assert len(six.encode()) > 3 * PIECE

    checkout = Checkout(rt.redis, rt.keys, tenant)
    checkout.read({student: [day_field(day)]})
    checkout.set_day(student, day, six)
    checkout.set_group(student, "7A")
    commit(rt, checkout)
    assert rt.redis.object("encoding", key) == b"listpack"
    assert len(rt.redis.hkeys(key)) > 3

    checkout = Checkout(rt.redis, rt.keys, tenant)
    assert checkout.read({student: [day_field(day), "g"]})[student].get(day_field(day)) == six
    checkout.set_day(student, day, two)  # shorter: the pieces it no longer needs go
    commit(rt, checkout)
    assert sorted(rt.redis.hkeys(key)) == sorted(k.encode() for k in {**stored_mapping({day_field(day): two}), "g": 1})

    checkout = Checkout(rt.redis, rt.keys, tenant)
    assert checkout.read({student: [day_field(day)]})[student].get(day_field(day)) == two
    checkout.set_day(student, day, "")  # no absence left: the field and every piece go
    commit(rt, checkout)
    assert rt.redis.hkeys(key) == [b"g"]


def test_a_write_without_a_read_still_removes_old_pieces(rt):
    tenant, student = "skole-a", "s-unread"
    key = rt.keys.pupil(tenant, student)
    rt.redis.hset(key, mapping=stored_mapping({"s:absence.pattern": "y" * 300}))
    checkout = Checkout(rt.redis, rt.keys, tenant)
    checkout.set_state(student, "absence.pattern", "short")
    commit(rt, checkout)
    assert rt.redis.hgetall(key) == {b"s:absence.pattern": b"short"}


def test_retention_trims_the_pieces_of_old_days_too(rt):
    tenant, student = "skole-a", "s-trim"
    key = rt.keys.pupil(tenant, student)
    rt.redis.hset(key, mapping=stored_mapping({day_field("2025-03-03"): long_day(5), day_field("2026-11-24"): "day=a0"}))
    checkout = Checkout(rt.redis, rt.keys, tenant)
    pupil = checkout.read({student: [day_field("2026-11-24")]}, cutoff="2025-08-01")[student]
    assert sorted(pupil.stale) == sorted(k for k in stored_mapping({day_field("2025-03-03"): long_day(5)}))
    checkout.trim(student, pupil.stale, "2025-08-01")
    commit(rt, checkout)
    assert sorted(rt.redis.hkeys(key)) == [b"d:2026-11-24", b"t"]
