"""The admin page's views: tenants and adapters, the plan, what the connector did, cases, dead letters, operations.

Each view that names a tenant resolves it through :func:`auth.tenant_or_404` first, so a ``school`` role reaches
its own tenant only, whatever URL or form it sends. Reads go through the store (the runtime's connection handed
on), actions through the engine. What is shown of pupils is ids, dates and codes, as stored.
"""
from __future__ import annotations

import difflib
import logging
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import (Blueprint, abort, current_app, flash, g, redirect, render_template, request, session,
                   url_for)
from flask_wtf.csrf import CSRFError

from connector.admin import auth
from connector.admin.texts import DEFAULT, LANGUAGES, TEXTS, text
from connector.config.secrets import SecretRef
from connector.engine import cases as engine_cases
from connector.engine import failed_jobs, outbox
from connector.engine.health import failing_polls, queue_state
from connector.store import cases as stored_cases
from connector.store import deliveries, health, journal, sign_ins
from connector.store import replay as stored_replay

log = logging.getLogger(__name__)
OSLO = ZoneInfo("Europe/Oslo")
OUTCOMES = ("written", "dead")

bp = Blueprint("admin", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static")


def rt():
    return current_app.extensions["connector"]


def language() -> str:
    return session.get("lang") if session.get("lang") in LANGUAGES else DEFAULT


@bp.app_template_filter("when")
def _when(epoch: float | None) -> str:
    if not epoch:
        return "–"
    return datetime.fromtimestamp(epoch, tz=timezone.utc).astimezone(OSLO).strftime("%Y-%m-%d %H:%M")


@bp.context_processor
def _globals():
    lang = language()
    return {"t": lambda key, **values: text(lang, key, **values), "lang": lang, "languages": LANGUAGES,
            "user": auth.user(), "visible": auth.visible_tenants(rt().config) if auth.user() else []}


@bp.after_request
def _no_store(response):
    response.headers["Cache-Control"] = "no-store"  # a shared computer's back button shows no school's data
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Content-Security-Policy", ("default-src 'self'; style-src 'self'; img-src 'self' "
                                                            "data:; form-action 'self'; frame-ancestors 'none'"))
    return response


@bp.errorhandler(CSRFError)
def _csrf_error(exc):
    return render_template("admin/error.html", message=text(language(), "csrf")), 400


@bp.errorhandler(404)
def _not_found(exc):
    return render_template("admin/error.html", message=text(language(), "not_found")), 404


# --- Signing in ----------------------------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would make our sign-in page a phishing tool."""
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return url_for("admin.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    runtime = rt()
    admin = runtime.config.admin
    error, status = None, 200
    if request.method == "POST":
        username = request.form.get("username", "")
        if sign_ins.locked(runtime.redis, runtime.keys):
            log.warning("admin sign-in refused: local account locked after %d failures", sign_ins.LIMIT)
            error, status = text(language(), "locked", minutes=sign_ins.WINDOW_SECONDS // 60), 429
        elif auth.check_local(admin, username, request.form.get("password", "")):
            sign_ins.succeeded(runtime.redis, runtime.keys)
            auth.sign_in(username, "admin", [], "local")
            log.info("admin sign-in: local account")
            return redirect(_safe_next(request.form.get("next")))
        else:
            sign_ins.failed(runtime.redis, runtime.keys)
            log.warning("admin sign-in refused: local account")
            error, status = text(language(), "bad_login"), 401
    return render_template("admin/login.html", providers=admin.providers, error=error,
                           next=request.values.get("next", ""), local=admin.password_file is not None), status


@bp.get("/login/<provider>")
def oidc_login(provider: str):
    client = auth.oidc_client(provider)
    session["next"] = _safe_next(request.args.get("next"))
    public = rt().config.admin.public_url
    back = (public.rstrip("/") + url_for("admin.oidc_callback", provider=provider) if public
            else url_for("admin.oidc_callback", provider=provider, _external=True))
    return client.authorize_redirect(back)


@bp.get("/auth/<provider>")
def oidc_callback(provider: str):
    client = auth.oidc_client(provider)
    settings = rt().config.admin.providers[provider]
    try:
        token = client.authorize_access_token()
    except Exception as exc:  # a cancelled sign-in, a bad state, an id token that does not verify
        log.warning("admin sign-in with %s failed: %s", provider, type(exc).__name__)
        return render_template("admin/error.html", message=text(language(), "oidc_failed")), 401
    claims = dict(token.get("userinfo") or {})
    granted = auth.roles_from_claims(settings.roles, claims)
    if granted is None:
        log.warning("admin sign-in with %s: no role for subject", provider)
        return render_template("admin/error.html", message=text(language(), "no_role")), 403
    role, tenants = granted
    who = str(claims.get("email") or claims.get("preferred_username") or claims.get("sub"))
    next_page = session.get("next")
    auth.sign_in(who, role, tenants, provider)
    log.info("admin sign-in with %s: role %s, tenants %s", provider, role, ",".join(tenants) or "all")
    return redirect(_safe_next(next_page))


@bp.post("/logout")
def logout():
    language_ = session.get("lang")
    session.clear()
    if language_:
        session["lang"] = language_
    return redirect(url_for("admin.login"))


@bp.post("/language")
def set_language():
    if request.form.get("lang") in LANGUAGES:
        session["lang"] = request.form["lang"]
    return redirect(_safe_next(request.form.get("next")))


# --- Overview and operations ---------------------------------------------------------------------------------------


def _failed_jobs(tenants: list[str]):
    """The failed jobs that concern these tenants; a job about several (due items) names only these."""
    from dataclasses import replace

    try:
        found = failed_jobs.failed_jobs(rt())
    except Exception:
        log.exception("reading the failed jobs")
        return []
    mine = []
    for job in found:
        shared = [tenant for tenant in job.tenant.split(",") if tenant in tenants]
        if shared:
            mine.append(replace(job, tenant=",".join(shared)))
    return mine


@bp.get("/")
@auth.login_required
def index():
    runtime = rt()
    tenants = auth.visible_tenants(runtime.config)
    letters = [letter for letter in outbox.dead_letters(runtime) if letter["tenant"] in tenants]
    refused = {flag: reason for flag, reason in health.refused(runtime.redis, runtime.keys).items()
               if flag.split("/", 1)[0] in tenants}
    rows = [{"tenant": runtime.config.tenants[tenant_id],
             "dead": sum(1 for letter in letters if letter["tenant"] == tenant_id),
             "refused": sum(1 for flag in refused if flag.split("/", 1)[0] == tenant_id)} for tenant_id in tenants]
    jobs = _failed_jobs(tenants)
    polls_failing = {where: spell for where, spell in failing_polls(runtime).items()
                     if where.split("/", 1)[0] in tenants}
    ops = None
    if auth.user()["role"] == "admin":  # the queue is shared by every school: its numbers are the operator's
        ops = queue_state(runtime)
    return render_template("admin/index.html", rows=rows, jobs=jobs, refused=refused, ops=ops,
                           polls_failing=polls_failing)


@bp.post("/jobs/retry")
@auth.admin_required
def retry_failed_jobs():
    """Run failed jobs again, one or all, once the cause is fixed: the operator's (``admin``), as one job may carry
    due items of several schools."""
    runtime = rt()
    known = {job.id for job in failed_jobs.failed_jobs(runtime)}
    wanted = sorted(known) if request.form.get("all") else request.form.getlist("id")
    if any(job_id not in known for job_id in wanted):
        abort(404)
    retried = sum(failed_jobs.retry(runtime, job_id) for job_id in wanted)
    log.info("admin %s queued %d failed job(s) again", auth.user()["how"], retried)
    flash(text(language(), "jobs_retried", count=retried), "ok")
    return redirect(url_for("admin.index"))


# --- A tenant ------------------------------------------------------------------------------------------------------


def masked(value):
    """An adapter's settings as shown: a secret as the reference it is read from and dots, never its value."""
    if isinstance(value, SecretRef):
        return f"•••••• ({value.kind}: {value.name})"
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(item) for item in value]
    return value


@bp.get("/t/<tenant_id>")
@auth.login_required
def tenant(tenant_id: str):
    runtime = rt()
    settings = auth.tenant_or_404(runtime.config, tenant_id)
    seen = deliveries.last_seen(runtime.redis, runtime.keys, tenant_id)
    refused = health.refused(runtime.redis, runtime.keys)
    adapters = [{"name": name, "type": adapter.type, "settings": masked(dict(adapter.settings)),
                 "delivery": seen.get((name, "delivery")), "poll": seen.get((name, "poll")),
                 "refused": refused.get(health.flag(tenant_id, name))}
                for name, adapter in settings.adapters.items()]
    shadowed = outbox.shadow_actions(runtime, tenant_id)
    report = stored_replay.latest_report(runtime.redis, runtime.keys, tenant_id)
    return render_template("admin/tenant.html", tenant=settings, adapters=adapters, shadowed=len(shadowed),
                           report=report)


@bp.get("/t/<tenant_id>/shadow")
@auth.login_required
def shadow(tenant_id: str):
    """What shadow mode recorded as *would write*: the connector's own words, ids and dates, as they would be sent."""
    runtime = rt()
    settings = auth.tenant_or_404(runtime.config, tenant_id)
    entries = outbox.shadow_actions(runtime, tenant_id)
    return render_template("admin/shadow.html", tenant=settings, entries=entries[-500:][::-1], total=len(entries))


@bp.get("/t/<tenant_id>/replay-report")
@auth.login_required
def replay_report(tenant_id: str):
    """The latest ``connector replay`` report, as the file it wrote: one page, charts inline, no scripts."""
    runtime = rt()
    auth.tenant_or_404(runtime.config, tenant_id)
    report = stored_replay.latest_report(runtime.redis, runtime.keys, tenant_id, with_html=True)
    if report is None:
        abort(404)
    response = current_app.response_class(report["html"], mimetype="text/html")
    # the report styles itself inline and runs no script: allow exactly that, nothing from elsewhere
    response.headers["Content-Security-Policy"] = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                                   "frame-ancestors 'none'")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/t/<tenant_id>/adapters/<adapter>/test")
@auth.login_required
def send_test(tenant_id: str, adapter: str):
    runtime = rt()
    settings = auth.tenant_or_404(runtime.config, tenant_id)
    if adapter not in settings.adapters:
        abort(404)
    lang = settings.language
    outcome, ref = outbox.send_test(runtime, tenant_id, adapter, text(lang, "test_title"), text(lang, "test_body"))
    log.info("admin %s sent a test task through %s/%s: %s", auth.user()["how"], tenant_id, adapter, outcome)
    if outcome == "done":
        flash(text(language(), "test_sent", ref=ref), "ok")
    else:
        flash(text(language(), "test_not_sent", ref=ref, outcome=outcome), "error")
    return redirect(url_for("admin.tenant", tenant_id=tenant_id))


@bp.get("/t/<tenant_id>/plan")
@auth.login_required
def plan(tenant_id: str):
    from connector.rules.plan import merge_plan
    from connector.rules.plan_text import plan_lines

    settings = auth.tenant_or_404(rt().config, tenant_id)
    lang = language()
    school = f"{settings.name} ({settings.id})"
    lines = plan_lines(school, settings.plan, lang)
    default = merge_plan(None)
    changes = [(rule_id, key, default.get(rule_id, {}).get(key), value)
               for rule_id, values in sorted(settings.plan.items()) for key, value in sorted(values.items())
               if default.get(rule_id, {}).get(key) != value]
    diff = list(difflib.unified_diff(plan_lines(school, default, lang), lines, "standard", settings.id, lineterm="",
                                     n=1))
    return render_template("admin/plan.html", tenant=settings, lines=lines, changes=changes, diff=diff)


def evidence_lines(entry, lang: str) -> list[str]:
    """An action's evidence as short lines: the plan's routine it belongs to, the ladder's step, and what the rule
    counted (dates, counts), each with its label in the page's language."""
    import json

    from connector.rules.settings import seed

    lines = []
    routine = seed().get(entry.rule, {}).get("routine", {})
    if routine:
        lines.append(f"{text(lang, 'plan_step')}: {routine.get(lang) or routine.get('nb')}")
    if entry.step:
        lines.append(f"{text(lang, 'step')} {entry.step}")
    try:
        found = json.loads(entry.evidence) if entry.evidence else {}
    except ValueError:
        found = {}
    for key, value in found.items():
        label = text(lang, f"ev.{key}") if f"ev.{key}" in TEXTS else key
        if key == "findings":
            for finding in value:
                dates = ", ".join(finding.get("dates", []))
                lines.append(f"{label}: {finding.get('kind')} × {finding.get('count')}" + (f" ({dates})" if dates else ""))
        elif key == "rate":
            lines.append(f"{label}: {value * 100:.1f} %")
        else:
            lines.append(f"{label}: {value}")
    return lines


@bp.get("/t/<tenant_id>/actions")
@auth.login_required
def actions(tenant_id: str):
    runtime = rt()
    settings = auth.tenant_or_404(runtime.config, tenant_id)
    wanted = {name: request.args.get(name, "").strip() for name in ("rule", "pupil", "date", "outcome")}
    entries = journal.read(runtime.redis, runtime.keys, tenant_id)
    rules = sorted({entry.rule for entry in entries})

    def day(entry) -> str:
        return datetime.fromtimestamp(entry.at, tz=timezone.utc).astimezone(OSLO).date().isoformat()

    shown = [entry for entry in entries
             if (not wanted["rule"] or entry.rule == wanted["rule"])
             and (not wanted["pupil"] or entry.pupil == wanted["pupil"])
             and (not wanted["date"] or wanted["date"] in (day(entry), entry.due))
             and (not wanted["outcome"] or entry.out == wanted["outcome"])]
    lang = language()
    return render_template("admin/actions.html", tenant=settings, entries=shown[:500], total=len(shown),
                           rules=rules, wanted=wanted, outcomes=OUTCOMES,
                           evidence={entry.ref: evidence_lines(entry, lang) for entry in shown[:500]})


@bp.get("/t/<tenant_id>/cases")
@auth.login_required
def cases(tenant_id: str):
    runtime = rt()
    settings = auth.tenant_or_404(runtime.config, tenant_id)
    ids = stored_cases.case_ids(runtime.redis, runtime.keys, tenant_id)
    found = stored_cases.load_many(runtime.redis, runtime.keys, tenant_id, ids)
    found.sort(key=lambda case: (case.get("opened_on") or "", case["id"]), reverse=True)
    return render_template("admin/cases.html", tenant=settings, cases=found)


@bp.get("/t/<tenant_id>/cases/<case_id>")
@auth.login_required
def case(tenant_id: str, case_id: str):
    runtime = rt()
    settings = auth.tenant_or_404(runtime.config, tenant_id)
    found = engine_cases.load_case(runtime, tenant_id, case_id)
    if found is None:
        abort(404)
    return render_template("admin/case.html", tenant=settings, case=found, lines=engine_cases.describe(found))


@bp.get("/t/<tenant_id>/dead-letters")
@auth.login_required
def dead_letters(tenant_id: str):
    settings = auth.tenant_or_404(rt().config, tenant_id)
    letters = [letter for letter in outbox.dead_letters(rt()) if letter["tenant"] == tenant_id]
    return render_template("admin/dead_letters.html", tenant=settings, letters=letters)


@bp.post("/t/<tenant_id>/dead-letters/retry")
@auth.login_required
def retry_dead_letters(tenant_id: str):
    runtime = rt()
    auth.tenant_or_404(runtime.config, tenant_id)
    mine = {letter["id"] for letter in outbox.dead_letters(runtime) if letter["tenant"] == tenant_id}
    wanted = sorted(mine) if request.form.get("all") else request.form.getlist("id")
    if any(letter_id not in mine for letter_id in wanted):
        abort(404)  # another school's letter, or one already retried: never touched from here
    retried = sum(outbox.retry_dead_letter(runtime, letter_id) for letter_id in wanted)
    log.info("admin %s put %d dead letter(s) of %s back into the outbox", auth.user()["how"], retried, tenant_id)
    flash(text(language(), "retried", count=retried), "ok")
    return redirect(url_for("admin.dead_letters", tenant_id=tenant_id))
