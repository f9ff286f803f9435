"""The report of a replay: what the plan would have created, per rule and school week, per recipient role, the load
on each contact teacher per week, the pupils flagged per rule and the median school days from a pupil's first
absence to the first task about them; with a second plan, both side by side and the difference.

One set of tables (:func:`tables`) is printed in the terminal (:func:`text`) and written into one self-contained
HTML file (:func:`html`) with charts drawn by pygal as inline SVG: no script, no font and no style sheet is
fetched, so the file opens anywhere without a network. Everything is sorted and derived from the replay alone, so
the same events give the same report, byte for byte.

Only ids, rule ids, roles, dates and counts appear: no action's text, no names.
"""
from __future__ import annotations

import html as html_escape
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from connector.engine.replay import Replayed

LABELS = {
    "nb": {
        "title": "Hva planen ville ha laget", "period": "Periode", "events": "hendelser", "plan": "plan",
        "by_rule": "Handlinger per regel og skoleuke", "rule": "regel", "total": "sum", "week": "uke",
        "by_role": "Handlinger per mottakerrolle og skoleuke", "role": "rolle",
        "load": "Oppgaver per kontaktlærer og skoleuke", "teachers": "kontaktlærere med oppgaver",
        "max": "flest på én", "mean": "snitt per kontaktlærer",
        "pupils": "Elever flagget per regel", "pupil_count": "elever",
        "median": "Median skoledager fra første fravær til første oppgave", "median_short": "median skoledager",
        "difference": "forskjell", "kinds": "Handlinger etter type", "kind": "type",
        "none": "ingen", "current": "gjeldende plan",
        "no_recipient": "(notat, ingen mottaker)", "load_each": "Oppgaver per kontaktlærer og skoleuke, hver for seg", "teacher": "kontaktlærer",
        "note": "Ingenting er skrevet til plattformen: dette er hva planen ville ha laget for hendelsene i perioden.",
    },
    "nn": {
        "title": "Kva planen ville ha laga", "period": "Periode", "events": "hendingar", "plan": "plan",
        "by_rule": "Handlingar per regel og skuleveke", "rule": "regel", "total": "sum", "week": "veke",
        "by_role": "Handlingar per mottakarrolle og skuleveke", "role": "rolle",
        "load": "Oppgåver per kontaktlærar og skuleveke", "teachers": "kontaktlærarar med oppgåver",
        "max": "flest på éin", "mean": "snitt per kontaktlærar",
        "pupils": "Elevar flagga per regel", "pupil_count": "elevar",
        "median": "Median skuledagar frå første fråvær til første oppgåve", "median_short": "median skuledagar",
        "difference": "skilnad", "kinds": "Handlingar etter type", "kind": "type",
        "none": "ingen", "current": "gjeldande plan",
        "no_recipient": "(notat, ingen mottakar)", "load_each": "Oppgåver per kontaktlærar og skuleveke, kvar for seg", "teacher": "kontaktlærar",
        "note": "Ingenting er skrive til plattforma: dette er kva planen ville ha laga for hendingane i perioden.",
    },
    "en": {
        "title": "What the plan would have created", "period": "Period", "events": "events", "plan": "plan",
        "by_rule": "Actions per rule and school week", "rule": "rule", "total": "total", "week": "week",
        "by_role": "Actions per recipient role and school week", "role": "role",
        "load": "Tasks per contact teacher and school week", "teachers": "contact teachers with tasks",
        "max": "most on one", "mean": "mean per contact teacher",
        "pupils": "Pupils flagged per rule", "pupil_count": "pupils",
        "median": "Median school days from first absence to first task", "median_short": "median school days",
        "difference": "difference", "kinds": "Actions by kind", "kind": "kind",
        "none": "none", "current": "current plan",
        "no_recipient": "(note, no recipient)", "load_each": "Tasks per contact teacher and school week, each teacher", "teacher": "contact teacher",
        "note": "Nothing was written to the platform: this is what the plan would have created for the period's events.",
    },
}


NO_RECIPIENT = "-"


@dataclass
class Summary:
    """The numbers of one replay, as plain data (sorted), from which every table and chart is drawn."""

    plan_name: str
    tenant: str
    first_day: date | None
    last_day: date | None
    events: int
    weeks: list[str] = field(default_factory=list)  # ISO weeks "2026-W47", in order
    by_rule_week: dict[str, dict[str, int]] = field(default_factory=dict)
    by_role_week: dict[str, dict[str, int]] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    teacher_week: dict[str, dict[str, int]] = field(default_factory=dict)  # week -> contact teacher id -> tasks
    pupils_per_rule: dict[str, int] = field(default_factory=dict)
    median_days: float | None = None


def summarise(replayed: Replayed, language: str = "nb") -> Summary:
    calendar = replayed.tenant.calendar
    summary = Summary(replayed.plan_name or LABELS[language]["current"], replayed.tenant.id, replayed.first_day, replayed.last_day, replayed.events)
    by_rule: dict[str, Counter] = defaultdict(Counter)
    by_role: dict[str, Counter] = defaultdict(Counter)
    teachers: dict[str, Counter] = defaultdict(Counter)
    kinds: Counter = Counter()
    pupils: dict[str, set] = defaultdict(set)
    first_task: dict[str, date] = {}
    weeks: set[str] = set()
    for record in replayed.actions:
        action = record["action"]
        day = calendar.local_date(datetime.fromtimestamp(record["decided_at"], tz=timezone.utc))
        year, number, _ = day.isocalendar()
        week = f"{year}-W{number:02d}"
        weeks.add(week)
        by_rule[action["rule_id"]][week] += 1
        role = (action.get("assignee") or {}).get("role") or NO_RECIPIENT  # a note is written to no one
        by_role[role][week] += 1
        kinds[action["kind"]] += 1
        if action.get("student_id"):
            pupils[action["rule_id"]].add(action["student_id"])
        if action["kind"] == "task":
            assignee = action.get("assignee") or {}
            if assignee.get("role") == "contact_teacher":
                teachers[week][assignee.get("id") or "-"] += 1
            student = action.get("student_id")
            if student and (student not in first_task or day < first_task[student]):
                first_task[student] = day
    summary.weeks = sorted(weeks)
    summary.by_rule_week = {rule: dict(sorted(counts.items())) for rule, counts in sorted(by_rule.items())}
    summary.by_role_week = {role: dict(sorted(counts.items())) for role, counts in sorted(by_role.items())}
    summary.teacher_week = {week: dict(sorted(teachers[week].items())) for week in summary.weeks if teachers[week]}
    summary.by_kind = dict(sorted(kinds.items()))
    summary.pupils_per_rule = {rule: len(ids) for rule, ids in sorted(pupils.items())}
    spans = [calendar.school_days_between(date.fromisoformat(replayed.first_absence[student]), day)
             for student, day in first_task.items() if student in replayed.first_absence]
    summary.median_days = float(statistics.median(spans)) if spans else None
    return summary


# --- tables --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    key: str  # a stable id, for the HTML (and its test)
    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]


def _week_label(week: str) -> str:
    return str(int(week.split("-W")[1]))


def _n(value: float | int | None, none: str) -> str:
    if value is None:
        return none
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}"
    return str(int(value))


def _diff(a: float | None, b: float | None, none: str) -> str:
    if a is None or b is None:
        return none
    d = b - a
    text = _n(d, none)
    return f"+{text}" if d > 0 else text


def _load(summary: Summary, week: str) -> tuple[int, int, float]:
    counts = summary.teacher_week.get(week, {})
    values = list(counts.values())
    return len(values), max(values, default=0), (sum(values) / len(values) if values else 0.0)


def tables(summary: Summary, other: Summary | None = None, language: str = "nb") -> list[Table]:
    """The report's tables; with ``other``, each figure of both plans side by side and the difference (other − first)."""
    t = LABELS[language]
    none = t["none"]
    if other is None:
        weeks = summary.weeks
        by_rule = Table("by_rule", t["by_rule"], (t["rule"], *(f"{t['week']} {_week_label(w)}" for w in weeks),
                                                    t["total"]),
                        [(rule, *(str(counts.get(w, 0)) for w in weeks), str(sum(counts.values())))
                         for rule, counts in summary.by_rule_week.items()])
        by_role = Table("by_role", t["by_role"], (t["role"], *(f"{t['week']} {_week_label(w)}" for w in weeks),
                                                    t["total"]),
                        [(_role(role, t), *(str(counts.get(w, 0)) for w in weeks), str(sum(counts.values())))
                         for role, counts in summary.by_role_week.items()])
        load = Table("load", t["load"], (t["week"], t["teachers"], t["max"], t["mean"]),
                     [(_week_label(w), *(_n(v, none) for v in _load(summary, w))) for w in weeks])
        teachers = sorted({teacher for counts in summary.teacher_week.values() for teacher in counts})
        each = Table("load_each", t["load_each"], (t["teacher"], *(f"{t['week']} {_week_label(w)}" for w in weeks),
                                                     t["total"]),
                     [(teacher, *(str(summary.teacher_week.get(w, {}).get(teacher, 0)) for w in weeks),
                       str(sum(summary.teacher_week.get(w, {}).get(teacher, 0) for w in weeks)))
                      for teacher in teachers])
        pupils = Table("pupils", t["pupils"], (t["rule"], t["pupil_count"]),
                       [(rule, str(n)) for rule, n in summary.pupils_per_rule.items()])
        kinds = Table("kinds", t["kinds"], (t["kind"], t["total"]),
                      [(kind, str(n)) for kind, n in summary.by_kind.items()])
        median = Table("median", t["median"], (t["median_short"],), [(_n(summary.median_days, none),)])
        return [by_rule, by_role, load, each, pupils, kinds, median]
    a, b = summary.plan_name, other.plan_name
    header = lambda first: (first, a, b, t["difference"])  # noqa: E731
    rules = sorted(set(summary.by_rule_week) | set(other.by_rule_week))
    totals = lambda s, r: sum(s.by_rule_week.get(r, {}).values())  # noqa: E731
    by_rule = Table("by_rule", t["by_rule"], header(t["rule"]),
                    [(r, str(totals(summary, r)), str(totals(other, r)), _diff(totals(summary, r), totals(other, r),
                                                                                none)) for r in rules])
    roles = sorted(set(summary.by_role_week) | set(other.by_role_week))
    role_total = lambda s, r: sum(s.by_role_week.get(r, {}).values())  # noqa: E731
    by_role = Table("by_role", t["by_role"], header(t["role"]),
                    [(_role(r, t), str(role_total(summary, r)), str(role_total(other, r)),
                      _diff(role_total(summary, r), role_total(other, r), none)) for r in roles])
    weeks = sorted(set(summary.weeks) | set(other.weeks))
    load = Table("load", f"{t['load']} ({t['max']})", header(t["week"]),
                 [(_week_label(w), str(_load(summary, w)[1]), str(_load(other, w)[1]),
                   _diff(_load(summary, w)[1], _load(other, w)[1], none)) for w in weeks])
    teacher_total = lambda s, who: sum(counts.get(who, 0) for counts in s.teacher_week.values())  # noqa: E731
    teachers = sorted({who for s in (summary, other) for counts in s.teacher_week.values() for who in counts})
    each = Table("load_each", t["load_each"], header(t["teacher"]),
                 [(who, str(teacher_total(summary, who)), str(teacher_total(other, who)),
                   _diff(teacher_total(summary, who), teacher_total(other, who), none)) for who in teachers])
    pupil_rules = sorted(set(summary.pupils_per_rule) | set(other.pupils_per_rule))
    pupils = Table("pupils", t["pupils"], header(t["rule"]),
                   [(r, str(summary.pupils_per_rule.get(r, 0)), str(other.pupils_per_rule.get(r, 0)),
                     _diff(summary.pupils_per_rule.get(r, 0), other.pupils_per_rule.get(r, 0), none))
                    for r in pupil_rules])
    kinds_all = sorted(set(summary.by_kind) | set(other.by_kind))
    kinds = Table("kinds", t["kinds"], header(t["kind"]),
                  [(k, str(summary.by_kind.get(k, 0)), str(other.by_kind.get(k, 0)),
                    _diff(summary.by_kind.get(k, 0), other.by_kind.get(k, 0), none)) for k in kinds_all])
    median = Table("median", t["median"], header(""),
                   [(t["median_short"], _n(summary.median_days, none), _n(other.median_days, none),
                     _diff(summary.median_days, other.median_days, none))])
    return [by_rule, by_role, load, each, pupils, kinds, median]


def _role(role: str, t: dict[str, str]) -> str:
    return t["no_recipient"] if role == NO_RECIPIENT else role


def _heading(summary: Summary, other: Summary | None, language: str) -> list[str]:
    t = LABELS[language]
    period = f"{summary.first_day} – {summary.last_day}" if summary.first_day else t["none"]
    plans = summary.plan_name + (f" / {other.plan_name}" if other else "")
    return [f"{t['title']}: {summary.tenant}", f"{t['period']}: {period}, {summary.events} {t['events']}; "
            f"{t['plan']}: {plans}", t["note"]]


def text(summary: Summary, other: Summary | None = None, language: str = "nb") -> str:
    """The tables as the terminal shows them: columns separated by at least two spaces."""
    lines = _heading(summary, other, language)
    for table in tables(summary, other, language):
        lines += ["", table.title]
        rows = [table.header, *table.rows]
        widths = [max(len(row[i]) for row in rows) for i in range(len(table.header))]
        for row in rows:
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return "\n".join(lines) + "\n"


# --- HTML ----------------------------------------------------------------------------------------------------------


def _chart_style():
    from pygal.style import Style

    return Style(background="white", plot_background="white", font_family="sans-serif",
                 colors=("#1f5f8b", "#d9822b", "#3c8d40", "#a23b72", "#6b6b6b", "#c9b11d", "#4bb3c4", "#8c564b"))


def _svg(chart) -> str:
    """A pygal chart as inline SVG: no script (pygal's tooltips load one from the web), no XML declaration, and
    ids numbered instead of random, so the same report is the same file."""
    svg = re.sub(r"<script\b.*?</script>", "", chart.render(is_unicode=True), flags=re.DOTALL)
    ident = getattr(chart, "_ident", "chart")
    return re.sub(r"(chart-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", ident, svg)


def _config(title: str, ident: str, **extra):
    import pygal

    config = pygal.Config(title=title, js=[], disable_xml_declaration=True, style=_chart_style(), width=900,
                          height=360, explicit_size=True, legend_at_bottom=True, truncate_legend=-1,
                          print_values=False, show_y_guides=True, x_label_rotation=0, **extra)
    return config, ident


def charts(summary: Summary, other: Summary | None, language: str) -> list[str]:
    import pygal

    t = LABELS[language]
    out = []
    for n, s in enumerate([summary] + ([other] if other else [])):
        config, ident = _config(f"{t['by_rule']} ({s.plan_name})", f"chart-by-rule-{n}")
        chart = pygal.StackedBar(config)
        chart._ident = ident
        chart.x_labels = [_week_label(w) for w in s.weeks]
        for rule, counts in s.by_rule_week.items():
            chart.add(rule, [counts.get(w, 0) for w in s.weeks])
        out.append(_svg(chart))
    weeks = sorted(set(summary.weeks) | set(other.weeks if other else []))
    config, ident = _config(f"{t['load']} ({t['max']})", "chart-load")
    chart = pygal.Line(config)
    chart._ident = ident
    chart.x_labels = [_week_label(w) for w in weeks]
    for s in [summary] + ([other] if other else []):
        chart.add(f"{t['max']} ({s.plan_name})", [_load(s, w)[1] for w in weeks])
        chart.add(f"{t['mean']} ({s.plan_name})", [round(_load(s, w)[2], 1) for w in weeks])
    out.append(_svg(chart))
    rules = sorted(set(summary.pupils_per_rule) | set(other.pupils_per_rule if other else []))
    config, ident = _config(t["pupils"], "chart-pupils")
    chart = pygal.HorizontalBar(config)
    chart._ident = ident
    chart.x_labels = rules
    for s in [summary] + ([other] if other else []):
        chart.add(s.plan_name, [s.pupils_per_rule.get(r, 0) for r in rules])
    out.append(_svg(chart))
    return out


PAGE = """<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2rem; color: #222; max-width: 1000px; }}
h1 {{ font-size: 1.5rem; }} h2 {{ font-size: 1.1rem; margin-top: 2rem; }}
table {{ border-collapse: collapse; margin: 0.5rem 0; font-size: 0.85rem; display: block; overflow-x: auto; }}
th, td {{ border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; white-space: nowrap; }}
th:first-child, td:first-child {{ text-align: left; }}
.chart svg {{ max-width: 100%; height: auto; }}
</style>
</head>
<body>
<h1>{title}</h1>
{intro}
{charts}
{tables}
</body>
</html>
"""


def html(summary: Summary, other: Summary | None = None, language: str = "nb") -> str:
    """One self-contained HTML page: the same tables as :func:`text` and the charts as inline SVG."""
    esc = html_escape.escape
    heading = _heading(summary, other, language)
    parts = []
    for table in tables(summary, other, language):
        head = "".join(f"<th>{esc(cell)}</th>" for cell in table.header)
        body = "".join("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in table.rows)
        parts.append(f'<h2>{esc(table.title)}</h2>\n<table class="figures" id="table-{table.key}">'
                     f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    figures = "\n".join(f'<div class="chart">{svg}</div>' for svg in charts(summary, other, language))
    intro = "\n".join(f"<p>{esc(line)}</p>" for line in heading[1:])
    return PAGE.format(lang="nn" if language == "nn" else "en" if language == "en" else "nb",
                       title=esc(heading[0]), intro=intro, charts=figures, tables="\n".join(parts))
