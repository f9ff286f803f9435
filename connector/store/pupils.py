"""A pupil's state, and the one way a job reads and changes it: check out, decide, commit with compare-and-set.

The pupil hash (``keys.pupil``) holds:

===========================  ==========================================================================
``g``                        the pupil's group
``t``                        the retention cutoff the hash was last trimmed to (once per school year)
``d:<YYYY-MM-DD>``           that day's absences, ``history.encode_day``'s ``key=code;…`` (no field: none)
``s:<rule id>``              a rule's follow-up state (``followup.pack``)
``h:<year>:<subject>``       undocumented minutes in a subject this school year (the absence limit)
``L:<year>:<term>:<subject>``  the absence-limit level already acted on this term
===========================  ==========================================================================

and beside it the notices hash (``keys.notices``): ``<from>|<to>`` -> reason code, never the notice's text.

**Pieces of at most 64 bytes.** Redis keeps a small hash as one compact listpack only while every field and value
is at most ``hash-max-listpack-value`` bytes (64 by default); one longer value (a day with six lessons missed, a
pattern state with many findings) turns the whole hash into a hash table, which costs about 60 bytes more per
field. So a value longer than 64 bytes is stored in pieces: the field itself holds a first byte giving the number
of further pieces (1–31, a control character no stored text starts with) and the first 63 bytes; the rest follow in
``<field>#1``, ``<field>#2``, … of 64 bytes each. The read script joins them, so nothing above the store sees
pieces; a write removes the pieces the old value had and the new one does not need. This took a school year's
pupil hashes from 2,922 to about 1,900 bytes per pupil (``bench/memory.py``).

**Retention.** Both keys expire: every commit that writes one sets its expiry to the checkout's ``expire_at`` (the
school's retention, ``rules.history.retention_end``), so the state of a pupil nobody writes about any more goes by
itself, and ``t`` trims the days of one who is still seen.

**Check out, commit.** A job reads the pupils it works on through a :class:`Checkout`, which first ``WATCH``es their
keys on the job's own connection; everything the job decided (the pupils' new days and states, and with them the
deadlines and actions, see ``engine.consequences``) is then written in one ``MULTI``/``EXEC`` on that connection. If
another job changed one of those pupils in between, ``EXEC`` writes nothing and :class:`Conflict` is raised: the
job is judged again from the start on what is stored now. So no update is lost, and a job that dies at any line
before ``EXEC`` has written nothing of its decisions — its retry starts from the same state, never from marks
saved without their consequences. No lock is held, so a killed worker leaves nothing behind to wait for.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from redis import Redis
from redis.exceptions import WatchError

from connector.store.keys import Keys
from connector.store.scripts import Script

GROUP = "g"
TRIMMED = "t"
STATE = "s:"


def day_field(day: str) -> str:
    return f"d:{day}"


def state_field(rule_id: str) -> str:
    return STATE + rule_id


PIECE = 64  # Redis's default hash-max-listpack-value
MAX_PIECES = 31  # further pieces a value may have; a longer one is stored whole (correct, only less compact)


def pieces(field: str, value: str) -> dict[str, bytes]:
    """How ``value`` is stored: one field, or a first piece and its continuations (see the module's docstring)."""
    raw = value.encode()
    if len(raw) <= PIECE:
        return {field: raw}
    rest = raw[PIECE - 1:]
    more = [rest[i:i + PIECE] for i in range(0, len(rest), PIECE)]
    if len(more) > MAX_PIECES:
        return {field: raw}
    stored = {field: bytes([len(more)]) + raw[:PIECE - 1]}
    stored.update({f"{field}#{n}": piece for n, piece in enumerate(more, 1)})
    return stored


def stored_mapping(mapping: Mapping[str, str]) -> dict[str, bytes]:
    """A pupil's fields as they are written (for a tool that writes history straight into the store)."""
    out: dict[str, bytes] = {}
    for field, value in mapping.items():
        out.update(pieces(field, value))
    return out


def _further_pieces(value: str | None) -> int:
    """How many ``#n`` pieces a stored value has, from its length (the inverse of :func:`pieces`)."""
    if value is None:
        return 0
    size = len(value.encode())
    more = 0 if size <= PIECE else -(-(size - PIECE + 1) // PIECE)
    return more if more <= MAX_PIECES else 0


def _piece_names(field: str, start: int, stop: int) -> list[str]:
    return [f"{field}#{n}" for n in range(start, stop + 1)]


class Conflict(RuntimeError):
    """Another job changed a pupil this job read: nothing was written, and the job is to be judged again."""


# KEYS: pupil hashes, then the notices hashes of those pupils whose notices are wanted. ARGV[1]: the retention
# cutoff ("" = none); then per pupil: 1 if its notices are wanted (its notices key comes next in KEYS) else 0, the
# number of fields wanted and their names. Returns per pupil: the fields' values, the notices as a flat list, and
# (when the hash was not yet trimmed to the cutoff) its day fields from before the cutoff.
READ = Script("""
local cutoff = ARGV[1]
local at = 2
local out = {}
local pupils = 0
while at <= #ARGV do
  pupils = pupils + 1
  local with_notices = ARGV[at] == '1'
  local count = tonumber(ARGV[at + 1])
  at = at + 2
  local fields = {}
  for j = 1, count do fields[j] = ARGV[at + j - 1] end
  at = at + count
  local values = {}
  if count > 0 then values = redis.call('HMGET', KEYS[pupils], unpack(fields)) end
  for j = 1, count do
    local v = values[j]
    if v and #v > 0 and string.byte(v, 1) < 32 then
      local names = {}
      for k = 1, string.byte(v, 1) do names[k] = fields[j] .. '#' .. k end
      local rest = redis.call('HMGET', KEYS[pupils], unpack(names))
      for k = 1, #rest do rest[k] = rest[k] or '' end
      values[j] = string.sub(v, 2) .. table.concat(rest)
    end
  end
  out[pupils] = {values, {}, {}}
end
local next_notices = pupils + 1
at = 2
for i = 1, pupils do
  if ARGV[at] == '1' then
    out[i][2] = redis.call('HGETALL', KEYS[next_notices])
    next_notices = next_notices + 1
  end
  at = at + 2 + tonumber(ARGV[at + 1])
  if cutoff ~= '' and redis.call('HGET', KEYS[i], 't') ~= cutoff then
    local stale = {}
    for _, field in ipairs(redis.call('HKEYS', KEYS[i])) do
      if string.sub(field, 1, 2) == 'd:' and string.sub(field, 3) < cutoff then stale[#stale + 1] = field end
    end
    out[i][3] = stale
  end
end
return out
""")


class Pupil:
    """What a job read of one pupil: the fields it asked for, the notices, and day fields past the retention."""

    def __init__(self, fields: dict[str, str | None], notices: dict[str, str], stale: list[str]):
        self.fields, self.notices, self.stale = fields, notices, stale

    def get(self, field: str) -> str | None:
        return self.fields.get(field)

    @property
    def group(self) -> str | None:
        return self.fields.get(GROUP)


def _text(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None


class Checkout:
    """One job's view of the pupils it reads, and the writes it will commit with the rest of its decisions."""

    def __init__(self, redis: Redis, keys: Keys, tenant: str, expire_at: int | None = None):
        self.redis, self.keys, self.tenant = redis, keys, tenant
        self.expire_at = expire_at  # epoch seconds: when what this job writes of a pupil is past the retention
        self._pipe = None
        self._watched: set[str] = set()
        self._writes: list = []
        self._written: set[str] = set()  # the pupil and notices keys this job writes, each given the expiry
        # What this job has already decided for a pupil's field (None: removed) or notices, so that a second read
        # in the same job (a delivery with a register and a task update of one pupil) sees it, not the stored value.
        self._pending: dict[tuple[str, str], str | None] = {}
        self._pending_notices: dict[str, dict[str, str]] = {}
        # How many ``#n`` pieces each field read has in Redis now (what a write must remove if it needs fewer).
        self._stored_pieces: dict[tuple[str, str], int] = {}

    # --- reading ---------------------------------------------------------------------------------------------------

    def _watch(self, keys: Iterable[str]) -> None:
        new = [key for key in keys if key not in self._watched]
        if not new:
            return
        if self._pipe is None:
            self._pipe = self.redis.pipeline(transaction=True)
        self._pipe.watch(*new)
        self._watched.update(new)

    def read(self, wants: Mapping[str, Iterable[str]], cutoff: str = "",
             notices_of: Iterable[str] | None = None) -> dict[str, Pupil]:
        """The named fields of each pupil, and its notices, after watching them: one round trip for all.

        ``cutoff``: also read whether each hash was trimmed to it (field ``t``) and, where not, list its day fields
        from before it (once per school year), for :meth:`trim`. ``notices_of``: the pupils whose notices are wanted
        (default all); a register's present pupils need none.
        """
        students = list(wants)
        if not students:
            return {}
        with_notices = set(students if notices_of is None else notices_of)
        keys = [self.keys.pupil(self.tenant, s) for s in students]
        keys += [self.keys.notices(self.tenant, s) for s in students if s in with_notices]
        self._watch(keys)
        args: list[str] = [cutoff]
        fields_of = []
        for student in students:
            fields = list(dict.fromkeys(wants[student]))
            if cutoff and TRIMMED not in fields:
                fields.append(TRIMMED)
            fields_of.append(fields)
            args += ["1" if student in with_notices else "0", str(len(fields)), *fields]
        replies = READ(self._pipe, keys, args)
        pupils = {}
        for student, fields, (values, notices, stale) in zip(students, fields_of, replies):
            pairs = iter(notices)
            read = dict(zip(fields, (_text(v) for v in values)))
            for field in fields:
                self._stored_pieces.setdefault((student, field), _further_pieces(read[field]))
                if (student, field) in self._pending:
                    read[field] = self._pending[(student, field)]
            pupils[student] = Pupil(
                read,
                {**{k.decode(): v.decode() for k, v in zip(pairs, pairs)}, **self._pending_notices.get(student, {})},
                [f.decode() for f in stale],
            )
        return pupils

    def members(self, key: str) -> set[str]:
        """A small set that decisions read (a group's lessons held on a day), watched like the pupils."""
        self._watch([key])
        return {m.decode() for m in self._pipe.smembers(key)}

    # --- writing (queued; sent by :meth:`commit`) -----------------------------------------------------------------

    def set_day(self, student: str, day: str, encoded: str) -> None:
        """A day's new record (``""``: no absence left, the field goes)."""
        self._store(student, day_field(day), encoded or None)

    def set_field(self, student: str, field: str, value: str) -> None:
        self._store(student, field, value)

    def _store(self, student: str, field: str, value: str | None) -> None:
        """Write ``value`` in its pieces (``None``: remove the field), and remove the pieces it no longer needs."""
        key = self.keys.pupil(self.tenant, student)
        self._written.add(key)
        self._pending[(student, field)] = value
        stored = pieces(field, str(value)) if value is not None else {}  # a number is stored as its text
        had = self._stored_pieces.get((student, field), MAX_PIECES)  # not read here: any it might have
        self._stored_pieces[(student, field)] = len(stored) - 1 if stored else 0
        gone = ([] if stored else [field]) + _piece_names(field, max(len(stored), 1), had)

        def write(p):
            if gone:
                p.hdel(key, *gone)
            if stored:
                p.hset(key, mapping=stored)
        self._writes.append(write)

    def set_state(self, student: str, rule_id: str, packed: str) -> None:
        self.set_field(student, state_field(rule_id), packed)

    def set_group(self, student: str, group: str) -> None:
        self.set_field(student, GROUP, group)

    def add(self, student: str, field: str, delta: int) -> None:
        key = self.keys.pupil(self.tenant, student)
        self._written.add(key)
        self._writes.append(lambda p: p.hincrby(key, field, delta))

    def trim(self, student: str, stale: list[str], cutoff: str, stale_notices: Iterable[str] = ()) -> None:
        """Drop day fields (and notices, by the day they end) older than the retention and remember the cutoff
        trimmed to."""
        key, notices = self.keys.pupil(self.tenant, student), self.keys.notices(self.tenant, student)
        stale_notices = sorted(stale_notices)
        self._written.add(key)

        def write(p):
            if stale:
                p.hdel(key, *stale)
            if stale_notices:
                p.hdel(notices, *stale_notices)
            p.hset(key, TRIMMED, cutoff)
        self._writes.append(write)

    def add_notice(self, student: str, notice_key: str, code: str) -> None:
        key = self.keys.notices(self.tenant, student)
        self._written.add(key)
        self._pending_notices.setdefault(student, {})[notice_key] = code
        self._writes.append(lambda p: p.hset(key, notice_key, code))

    def add_members(self, key: str, members: Iterable[str], ttl: int) -> None:
        members = sorted(members)
        self._writes.append(lambda p: (p.sadd(key, *members), p.expire(key, ttl)))

    # --- committing ------------------------------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        return bool(self._writes)

    def transaction(self):
        """The pipeline to queue the job's writes on, in ``MULTI`` (on the watching connection if any)."""
        if self._pipe is None:
            self._pipe = self.redis.pipeline(transaction=True)
        self._pipe.multi()
        for write in self._writes:
            write(self._pipe)
        if self.expire_at is not None:
            for key in sorted(self._written):
                self._pipe.expireat(key, self.expire_at)
        return self._pipe

    def commit(self, pipe) -> list:
        """``EXEC``: everything or nothing; :class:`Conflict` when a watched pupil changed since it was read."""
        try:
            return pipe.execute()
        except WatchError:
            raise Conflict(f"tenant={self.tenant}: a pupil changed while this job was deciding") from None
        finally:
            self.close()

    def close(self) -> None:
        """Give the connection back (``UNWATCH`` if the job stopped before committing)."""
        if self._pipe is not None:
            self._pipe.reset()
            self._pipe = None
        self._watched.clear()


def group_of(redis: Redis, keys: Keys, tenant: str, student: str) -> str | None:
    """The pupil's group as last stored, for a lookup (who teaches it): not checked out, so not watched."""
    raw = redis.hget(keys.pupil(tenant, student), GROUP)
    return raw.decode() if raw else None
