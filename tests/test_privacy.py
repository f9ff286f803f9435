"""No free text, name or secret in what the connector keeps (issue 12, isolation and privacy).

Guardians' messages from the labelled corpus (``tests/corpus/``, with a subject and a signature naming people),
notices and marks with reasons, staff feedback and teachers' notes on task updates go through the real door and a
real worker, against a private ``redis-server`` with ``appendonly yes`` as the deployment guide recommends. Some
jobs finish, one fails for good (its exception quoting the event it worked on, as a careless one might), one stays
queued, and the platform refuses the alerts (dead letters). Then every key and value in Redis (strings, hashes,
lists, sets, sorted sets, streams; RQ's zlib-compressed job data opened), every file Redis wrote (the AOF, which
holds even the jobs since deleted, and a snapshot), the captured log records and what was written to the platform
are searched for distinctive pieces of every input's text, the names and the secrets. None may be there.

``test_the_scan_finds_text_wherever_it_is_kept`` proves the search can fail: the same needles written the ways Redis
keeps values, and a delivery queued with its text as the door queued it before issue 12, are all found.
"""
from __future__ import annotations

import base64
import json
import logging
import re
import uuid
import zlib
from pathlib import Path

import pytest
import responses
from rq.job import Retry

from connector import create_app
from connector.config.schema import Config
from connector.engine import routing, rq_compat, runtime
from connector.engine.rq_compat import enqueue_delivery
from connector.engine.runtime import Runtime
from tests.support import (OTHER_TENANT_SECRET, PLATFORM, ROTATED_SECRET, SECRET, make_tenant, post_event,
                           run_worker)

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "connector" / "rules" / "corpus" / "guardian_messages.jsonl"
CATALOGUE = "\n".join(p.read_text() for p in sorted((ROOT / "connector" / "rules" / "catalogue").glob("*.yaml")))

MONDAY_MORNING = "2026-11-23T09:00:00+01:00"  # the test clock's now
GUARDIANS = ["Kari Nordmann", "Tone Haugland", "Ingrid Solvang", "Espen Rødland", "Marte Kvalheim",
             "Geir Austbø", "Randi Lysebø", "Håkon Tveitå", "Siri Bjørndal", "Arne Fossheim",
             "Liv Grønstad", "Per Aksnes", "Nina Hovland", "Odd Sæbø"]
CHILDREN = ["Jonas Nordmann", "Sofie Haugland", "Emil Solvang", "Ada Rødland", "Noah Kvalheim", "Ella Austbø",
            "Oskar Lysebø", "Leah Tveitå", "Filip Bjørndal", "Nora Fossheim", "Jakob Grønstad", "Vilde Aksnes",
            "Aksel Hovland", "Tiril Sæbø"]
NOTICE_REASON = "Sofie Haugland var hos tannlege Brekkestø på Lillesand tannklinikk, hun fikk bedøvelse"
MARK_REASON = "Emil Solvang var hos fysioterapeut Vågsbygd med vondt kne etter fotballkamp"
FEEDBACK = "Hei Kari Nordmann, vi snakket med Jonas Nordmann i friminuttet om det som skjedde ved sykkelstativet"
NOTE = "Snakket med mor Kari Nordmann på telefon 23.11., vi ble enige om at sosiallærer Bakketun kobles inn"
OTHER_NOTE = "Ringte far Geir Austbø, han sier Ella Austbø sover dårlig og gruer seg til gymtimene"


def corpus_messages() -> list[dict]:
    """Two plain messages of each category and two with typos (read by the tolerant reading: weak, a person reads
    them), the same ones every run."""
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    chosen = []
    for category in ("absence_notice", "school_refusal", "own_child_case", "several_children_case",
                     "school_environment", "staff_involved", "other"):
        chosen += [r for r in rows if r["category"] == category and r["kind"] == "plain"][:2]
    chosen += [r for r in rows if r["kind"] == "typo" and r["category"] == "school_environment"][:2]
    return chosen


def distinctive(text: str) -> str:
    """A piece of ``text`` no text of the connector's own holds: three words in a row, at least 14 characters."""
    words = text.split()
    for start in range(len(words)):
        for width in (3, 4, 5, 6):
            piece = " ".join(words[start:start + width])
            if len(piece) >= 14 and piece.lower() not in CATALOGUE.lower():
                return piece
    return text


# --- the search ----------------------------------------------------------------------------------------------------


def forms(needle: str) -> set[bytes]:
    """The bytes a needle is written as: UTF-8, and JSON's escapes (``\\u00f8`` and raw), in either case."""
    out = set()
    for text in (needle, needle.lower()):
        out.add(text.encode())
        out.add(json.dumps(text)[1:-1].encode())
        out.add(json.dumps(text, ensure_ascii=False)[1:-1].encode())
    return out


def inflated(blob: bytes) -> list[bytes]:
    """Every zlib stream inside ``blob`` (RQ compresses a job's data; in the AOF and a snapshot it sits among other
    bytes), opened; nested ones too."""
    found = []
    view = memoryview(blob)
    for match in re.finditer(rb"\x78[\x01\x5e\x9c\xda]", blob):
        try:
            opened = zlib.decompressobj().decompress(view[match.start():], 64 * 1024 * 1024)
        except zlib.error:
            continue
        if opened:
            found.append(opened)
            found += inflated(opened)
    return found


def with_inflated(blobs: list[bytes]) -> list[bytes]:
    return [part for blob in blobs for part in (blob, *inflated(blob))]


def redis_values(redis) -> list[bytes]:
    """Every key and every value in the server, whatever its type."""
    blobs = []
    for key in redis.scan_iter(count=1000):
        blobs.append(key)
        kind = redis.type(key).decode()
        if kind == "string":
            blobs.append(redis.get(key) or b"")
        elif kind == "hash":
            for field, value in redis.hgetall(key).items():
                blobs += [field, value]
        elif kind == "list":
            blobs += redis.lrange(key, 0, -1)
        elif kind == "set":
            blobs += list(redis.smembers(key))
        elif kind == "zset":
            blobs += [member for member, _ in redis.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            for entry_id, entry in redis.xrange(key):
                blobs.append(entry_id)
                for field, value in entry.items():
                    blobs += [field, value]
        else:
            raise AssertionError(f"key {key!r} of type {kind} is not searched")
    return with_inflated(blobs)


def files_of(server) -> dict[str, bytes]:
    """What Redis wrote to disk: the AOF as it is (every write, also of keys deleted since) and a fresh snapshot.
    The snapshot is written without LZF compression, which would hide a long string from a byte search."""
    redis = server.client()
    redis.config_set("rdbcompression", "no")
    redis.save()
    files = {str(path.relative_to(server.directory)): path.read_bytes() for path in server.files()}
    assert any(name.endswith(".aof") for name in files) and "dump.rdb" in files, sorted(files)
    return files


def found_in(needles: dict[str, str], blobs: list[bytes]) -> list[str]:
    return sorted({label for label, needle in needles.items() for blob in blobs
                   for form in forms(needle) if form in blob})


def scan(needles: dict[str, str], server, caplog, platform_bodies: list[bytes] = ()) -> dict[str, list[str]]:
    """Where each needle was found: ``{"redis": [...], "<file>": [...], "logs": [...], "platform": [...]}``."""
    redis = server.client()
    try:
        where = {"redis": found_in(needles, redis_values(redis))}
    finally:
        redis.close()
    for name, blob in files_of(server).items():
        where[name] = found_in(needles, with_inflated([blob]))
    records = [caplog.text] + [r.getMessage() for r in caplog.records] + [r.exc_text or "" for r in caplog.records]
    where["logs"] = found_in(needles, [text.encode() for text in records])
    where["platform"] = found_in(needles, list(platform_bodies))
    return {source: labels for source, labels in where.items() if labels}


# --- the run -------------------------------------------------------------------------------------------------------


@pytest.fixture
def private_rt(redis_server, clock, env_secrets):
    """The test tenants on the private server (``tests/redis_server.py``: appendonly, its own directory)."""
    token = f"privacy{uuid.uuid4().hex[:6]}"
    config = Config(
        tenants={
            "skole-a": make_tenant("skole-a", ["SKOLE_A_WEBHOOK_SECRET", "SKOLE_A_WEBHOOK_SECRET_NEXT"],
                                   "SKOLE_A_API_TOKEN"),
            "skole-b": make_tenant("skole-b", ["SKOLE_B_WEBHOOK_SECRET"], "SKOLE_B_API_TOKEN", language="nn"),
        },
        key_prefix=token,
        queue_name=token,
    )
    redis = redis_server.client()
    rt = Runtime(config, redis, clock=clock)
    rt.token = token
    runtime.install(rt)
    yield rt
    runtime.install(None)
    redis.close()


@pytest.fixture
def recording_platform():
    """The platform takes tasks and notes and refuses every alert (so alerts become dead letters, kept for an
    admin with the action they carried)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for path in ("tasks", "notes"):
            mock.add(responses.POST, f"{PLATFORM}/{path}", json={"id": f"remote-{path}"}, status=201)
        mock.add(responses.POST, f"{PLATFORM}/alerts", json={"error": "bad_request"}, status=400)
        yield mock


def secrets() -> dict[str, str]:
    out = {}
    for name, secret in (("webhook secret", SECRET), ("rotated webhook secret", ROTATED_SECRET),
                         ("other tenant's secret", OTHER_TENANT_SECRET)):
        out[name] = secret
        out[f"{name} (key)"] = base64.b64decode(secret.removeprefix("whsec_")).decode()
    out["api token a"] = "token-a-not-in-logs"
    out["api token b"] = "token-b-not-in-logs"
    return out


def guardian_message(index: int, row: dict, message_id: str) -> dict:
    guardian, child = GUARDIANS[index % len(GUARDIANS)], CHILDREN[index % len(CHILDREN)]
    return {
        "message_id": message_id,
        "sender": {"id": f"g-{index}", "role": "guardian"},
        "recipients": [{"id": "u-kl-7a", "role": "contact_teacher"}],
        "student_ids": [f"s-{index}"],
        "created_at": MONDAY_MORNING,
        "subject": f"Angående {child}",
        "body": f"{row['body']}\n\nHilsen {guardian}",
    }


def test_no_message_reason_note_name_or_secret_is_kept_in_redis_its_files_or_the_logs(
        private_rt, redis_server, recording_platform, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    rt = private_rt
    client = create_app(runtime=rt).test_client()
    monkeypatch.setattr(rq_compat, "RETRY", Retry(max=1, interval=0))  # the failing job fails for good at once
    needles: dict[str, str] = {**secrets()}
    needles.update({f"name {name}": name for name in GUARDIANS + CHILDREN})

    def post(event_type: str, data: dict, tenant: str = "skole-a") -> None:
        answer = post_event(client, event_type, data, tenant=tenant,
                            secret=SECRET if tenant == "skole-a" else OTHER_TENANT_SECRET)
        assert answer.status_code == 202, answer.get_json()

    # 1. guardians' messages, the same to both schools (one about the same pupil ids in each)
    for index, row in enumerate(corpus_messages()):
        needles[f"body {row['id']}"] = distinctive(row["body"])
        data = guardian_message(index, row, f"m-{row['id']}")
        post("message.created", data)
        post("message.created", data, tenant="skole-b")
    # 2. a notice and a mark, with reasons; staff feedback to a guardian
    needles.update({"notice reason": NOTICE_REASON, "mark reason": MARK_REASON, "feedback": FEEDBACK})
    post("absence.notice", {"student_id": "s-1", "from_date": "2026-11-23", "to_date": "2026-11-24",
                            "reason": NOTICE_REASON, "reason_code": "medical", "guardian_id": "g-1"})
    post("attendance.register", {"date": "2026-11-23", "group_id": "7A", "marks": [
        {"student_id": "s-2", "status": "absent", "documented": False, "reason": MARK_REASON},
        {"student_id": "s-3", "status": "absent", "documented": False}]})
    post("message.created", {"message_id": "m-feedback", "sender": {"id": "u-kl-7a", "role": "contact_teacher"},
                             "recipients": [{"id": "g-4", "role": "guardian"}], "student_ids": ["s-4"],
                             "created_at": MONDAY_MORNING, "subject": "Svar til Kari Nordmann", "body": FEEDBACK})
    run_worker(rt)
    tasks = [(json.loads(call.request.body), "skole-a" if "token-a" in call.request.headers["Authorization"]
              else "skole-b") for call in recording_platform.calls if call.request.url.endswith("/tasks")]
    level_tasks = [t for t, _ in tasks if t["rule_id"] == "escalation.level_task"]
    assert level_tasks and any(t["rule_id"] == "escalation.read_message" for t, _ in tasks)
    assert any(t["rule_id"] == "absence.school_refusal" for t, _ in tasks)

    # 3. teachers' notes on task updates: one escalates a case with the agreement, the others close theirs
    needles.update({"note": NOTE, "other note": OTHER_NOTE})
    for number, (task, tenant) in enumerate(tasks):
        escalate = task is level_tasks[0]
        post("task.updated", {"external_ref": task["external_ref"], "status": "completed",
                              "outcome": "escalate" if escalate else "resolved",
                              "completed_at": "2026-11-23T08:50:00+01:00",
                              "note": NOTE if escalate else f"{OTHER_NOTE} ({number})"}, tenant=tenant)
    run_worker(rt)
    escalated = [json.loads(c.request.body) for c in recording_platform.calls if c.request.url.endswith("/notes")
                 and json.loads(c.request.body)["rule_id"] == "escalation.escalated"]
    assert escalated and "merknaden på oppgaven" in escalated[0]["body"]  # pointed to, not quoted

    # 4. a job that fails for good, its exception quoting its events; and one left in the queue
    original = routing.handle_events

    def careless(rt_, tenant_id, adapter, events):
        if any(event.get("message_id") == "m-fails" for event in events):
            raise ValueError(f"cannot judge {events!r}")
        return original(rt_, tenant_id, adapter, events)

    monkeypatch.setattr(routing, "handle_events", careless)
    first = corpus_messages()[2]
    post("message.created", {**guardian_message(0, first, "m-fails"), "body": f"{first['body']} Hilsen Odd Sæbø"})
    run_worker(rt)
    assert len(rt.queue.failed_job_registry) == 1
    post("message.created", {**guardian_message(1, first, "m-queued"), "subject": "Angående Tiril Sæbø"})
    assert rt.queue.count == 1
    assert rt.redis.hlen(rt.keys.dead_letters) > 0  # the refused alerts wait for an admin, with their actions

    bodies = [call.request.body if isinstance(call.request.body, bytes) else (call.request.body or "").encode()
              for call in recording_platform.calls]
    assert scan(needles, redis_server, caplog, bodies) == {}


def test_the_scan_finds_text_wherever_it_is_kept(private_rt, redis_server, caplog):
    """The search above can fail: text written each way Redis keeps a value, and a delivery queued with its text as
    the door queued it before issue 12, is found in Redis, in the AOF, in the snapshot and in the log."""
    rt = private_rt
    redis = rt.redis
    needles = {kind: f"{kind} {name} var hos tannlege Brekkestø" for kind, name in (
        ("string", "Kari Nordmann"), ("hash", "Tone Haugland"), ("list", "Espen Rødland"), ("set", "Geir Austbø"),
        ("zset", "Randi Lysebø"), ("stream", "Håkon Tveitå"), ("compressed", "Siri Bjørndal"),
        ("job", "Liv Grønstad"), ("log", "Nina Hovland"))}
    redis.set("p:string", needles["string"])
    redis.hset("p:hash", "f", needles["hash"])
    redis.rpush("p:list", needles["list"])
    redis.sadd("p:set", needles["set"])
    redis.zadd("p:zset", {needles["zset"]: 1})
    redis.xadd("p:stream", {"f": needles["stream"]})
    redis.hset("p:compressed", "data", zlib.compress(json.dumps({"body": needles["compressed"]}).encode()))
    event = {"type": "message.created", "timestamp": "2026-11-23T08:00:00+00:00", "message_id": "m-1",
             "sender": {"id": "g-1", "role": "guardian"}, "recipients": [], "student_ids": ["s-1"],
             "created_at": MONDAY_MORNING, "body": needles["job"]}
    assert enqueue_delivery(rt, "skole-a", "generic", "old-style", [event])  # the text, queued as it came
    logging.getLogger("connector.test").warning("careless line: %s", needles["log"])

    where = scan(needles, redis_server, caplog)
    kept = sorted(set(needles) - {"log"})
    assert where["redis"] == kept
    (aof,) = [name for name in where if name.endswith(".aof")]
    assert where[aof] == kept
    assert where["dump.rdb"] == kept
    assert where["logs"] == ["log"]
    redis.delete("p:string")  # deleted: gone from Redis and the snapshot, but the AOF still has the write
    assert "string" in scan(needles, redis_server, caplog)[aof]


def test_distinctive_pieces_are_not_texts_of_the_connector():
    """A needle that the connector's own texts held would be found in every run: each is the guardian's words."""
    for row in corpus_messages():
        piece = distinctive(row["body"])
        assert piece in row["body"] and piece.lower() not in CATALOGUE.lower()
