"""``connector cases show <tenant> <case>``: a case's category, rule, position on each line and every step."""
from __future__ import annotations

from connector import cli
from tests.cases_support import (  # noqa: F401 - ``school`` is a fixture
    CONTACT_TEACHER, GUARDIAN, accept_all, at, school, send_message, sent, the_case, update,
)

OWN_CHILD = "Jeg er bekymret for at Emil ikke får nok oppfølging i matte. Kan vi ta en prat?"


def show(monkeypatch, rt, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "_runtime", lambda parsed: rt)
    code = cli.main(["cases", "show", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_show_prints_what_the_case_is_where_it_stands_and_every_step(client, rt, platform, school, monkeypatch,
                                                                     capsys):
    from datetime import datetime, timezone

    accept_all(platform)
    send_message(client, rt, OWN_CHILD)
    (task,) = sent(platform, "tasks")
    at(rt, datetime(2026, 11, 25, 23, 0, tzinfo=timezone.utc))  # a missed acknowledgement: reminded
    send_message(client, rt, "Hei, vi har startet med ekstra matte.", message_id="m-20", sender=CONTACT_TEACHER,
                 recipients=[GUARDIAN], created_at="2026-11-26T15:00:00+01:00")
    update(client, rt, task["external_ref"], outcome="escalate", note="Snakket med mor.",
           completed_at="2026-11-27T10:00:00+01:00")
    case_id = the_case(rt)["id"]

    code, out, err = show(monkeypatch, rt, capsys, "skole-a", case_id)

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:6] == [
        f"case {case_id}: open",
        "category: own_child_case (rule own_child.nb)",
        "route: ladder, track A",
        "opened: 2026-11-23 by guardian g-1",
        "pupils: s-1",
        "messages: m-1",
    ]
    assert lines[6].startswith("line school: open at level 2/4 school_environment since 2026-11-27;")
    history = [line.split()[:2] for line in lines[lines.index("history:") + 1:]]
    assert history == [
        ["2026-11-23", "created"], ["2026-11-26", "reminded"], ["2026-11-26", "acknowledged"],
        ["2026-11-26", "feedback"], ["2026-11-27", "escalated"], ["2026-11-27", "activity_plan_requested"],
    ]
    assert "to=school_environment by=level agreement_recorded=True" in out
    assert "Emil" not in out and "Snakket med mor" not in out  # neither the message nor the note's text is kept


def test_show_of_a_resolved_case_says_when_it_closed(client, rt, platform, school, monkeypatch, capsys):
    accept_all(platform)
    send_message(client, rt, OWN_CHILD)
    (task,) = sent(platform, "tasks")
    update(client, rt, task["external_ref"], outcome="resolved", completed_at="2026-11-24T10:00:00+01:00")
    code, out, _ = show(monkeypatch, rt, capsys, "skole-a", the_case(rt)["id"])
    assert code == 0
    assert out.splitlines()[0] == f"case {the_case(rt)['id']}: resolved (closed 2026-11-24)"
    assert "resolved" in out.splitlines()[-1] and "how=resolved feedback_given=False" in out


def test_show_of_an_unknown_case_says_so(rt, monkeypatch, capsys):
    code, out, err = show(monkeypatch, rt, capsys, "skole-a", "c-000000000000")
    assert (code, out) == (1, "")
    assert err == "no case c-000000000000 for tenant skole-a\n"


def test_show_for_an_unknown_tenant_says_so(rt, monkeypatch, capsys):
    code, out, err = show(monkeypatch, rt, capsys, "skole-x", "c-000000000000")
    assert (code, out) == (1, "")
    assert err == "no tenant skole-x in the configuration\n"
