"""Loading the YAML configuration: the example loads, and every problem names its file, line and field."""
from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from connector.config.schema import AdapterConfig, Config, ConfigError, check_config, config_from_dict, load_config
from connector.config.secrets import SecretRef

EXAMPLE = Path(__file__).resolve().parents[1] / "connector" / "example" / "connector.yaml"

CALENDAR = """\
school_year: 2026-27
first_day: 2026-08-13
last_day: 2027-06-18
breaks:
  - [2026-09-28, 2026-10-02]
"""

# Line numbers below are those of this text; tests that break it keep the line count where they can.
VALID = """\
key_prefix: test
tenants:
  demo-skole:
    name: Demo skole
    language: nb
    calendar:
      - file: calendar.yaml
      - {first_day: 2027-08-19, last_day: 2028-06-20, breaks: [[2027-10-04, 2027-10-08]]}
    extra_days_off: [2026-11-06]
    adapters:
      generic:
        type: generic
        webhook_secrets: [{env: DEMO_WEBHOOK_SECRET}]
        base_url: https://platform.example.no/api/connector
        api_token: {file: secrets/api_token}
    directory:
      roles: {principal: u-rektor, nearest_leader: u-leder, school_owner: u-eier}
      groups:
        7A: {contact_teacher: u-kl-7a}
    plan:
      absence.notice_missing: {notice_school_days: 3}
"""

WEBHOOK_SECRET = "whsec_c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw=="
API_TOKEN = "token-value-that-must-not-leak"


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    """A folder holding VALID, its calendar and its token file, with the webhook secret in the environment."""
    (tmp_path / "calendar.yaml").write_text(CALENDAR)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "api_token").write_text(API_TOKEN + "\n")
    (tmp_path / "connector.yaml").write_text(VALID)
    monkeypatch.setenv("DEMO_WEBHOOK_SECRET", WEBHOOK_SECRET)
    return tmp_path


def write_config(folder: Path, text: str) -> Path:
    path = folder / "connector.yaml"
    path.write_text(text)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def assert_one_problem(path: Path, line: int, dotted: str, *words: str) -> str:
    problems = problems_of(path)
    assert len(problems) == 1, problems
    problem = problems[0]
    assert problem.startswith(f"{path}:{line}: {dotted}: "), problem
    for word in words:
        assert word in problem
    return problem


# --- Valid configurations ------------------------------------------------------------------------------------------


def test_bundled_example_loads_with_one_generic_tenant():
    config = load_config(EXAMPLE)
    tenant = config.tenants["demo-skole"]
    assert tenant.name == "Demo skole"
    assert tenant.language == "nb"
    assert tenant.adapters["generic"].type == "generic"
    assert tenant.adapters["generic"].settings["base_url"] == "http://127.0.0.1:8099/api"
    assert tenant.directory.lookup("contact_teacher", "7A")
    assert tenant.directory.lookup("contact_teacher", "7B")
    assert tenant.directory.lookup("principal")
    assert tenant.directory.lookup("nearest_leader")


def test_bundled_example_counts_the_published_froland_school_days():
    calendar = load_config(EXAMPLE).tenants["demo-skole"].calendar
    assert calendar.count_school_days(date(2026, 8, 13), date(2027, 6, 18)) == 190


def test_bundled_example_passes_check_config_with_a_standard_webhooks_secret():
    assert check_config(EXAMPLE) == []
    settings = load_config(EXAMPLE).tenants["demo-skole"].adapters["generic"].settings
    assert settings["webhook_secrets"][0].reveal().startswith("whsec_")


def test_valid_config_builds_tenant_with_calendar_adapters_directory_and_merged_plan(config_dir):
    config = load_config(config_dir / "connector.yaml")
    assert isinstance(config, Config)
    assert config.key_prefix == "test"
    assert config.queue_name == "connector"
    assert config.dedupe_ttl_seconds == 604800
    tenant = config.tenants["demo-skole"]
    assert tenant.id == "demo-skole"
    adapter = tenant.adapters["generic"]
    assert isinstance(adapter, AdapterConfig) and adapter.name == "generic"
    assert adapter.settings["max_body_bytes"] == 1024 * 1024  # the adapter schema's default
    assert adapter.settings["webhook_secrets"] == [SecretRef("env", "DEMO_WEBHOOK_SECRET")]
    assert tenant.directory.lookup("contact_teacher", "7A") == "u-kl-7a"
    assert tenant.directory.lookup("principal", "7A") == "u-rektor"
    assert tenant.plan["absence.notice_missing"]["notice_school_days"] == 3
    assert tenant.plan["absence.notice_missing"]["task_school_days"] == 2  # default kept
    assert tenant.calendar.is_school_day(date(2026, 9, 28)) is False  # break from the calendar file
    assert tenant.calendar.is_school_day(date(2027, 10, 5)) is False  # break from the inline year
    assert tenant.calendar.is_school_day(date(2026, 11, 6)) is False  # extra day off


def test_relative_secret_file_resolves_against_the_config_folder_not_the_working_directory(config_dir, monkeypatch):
    monkeypatch.chdir(config_dir.parent)
    config = load_config(config_dir / "connector.yaml")
    token = config.tenants["demo-skole"].adapters["generic"].settings["api_token"]
    assert token == SecretRef("file", str(config_dir.resolve() / "secrets" / "api_token"))
    assert token.reveal() == API_TOKEN


def test_quoted_dates_mean_the_same_as_unquoted_ones(config_dir):
    text = VALID.replace("[2026-11-06]", "['2026-11-06']").replace(
        "first_day: 2027-08-19, last_day: 2028-06-20", "first_day: '2027-08-19', last_day: '2028-06-20'"
    )
    calendar = load_config(write_config(config_dir, text)).tenants["demo-skole"].calendar
    assert calendar.is_school_day(date(2026, 11, 6)) is False
    assert calendar.is_school_day(date(2027, 8, 19)) is True


def test_config_built_from_a_dict_is_validated_the_same_way(tmp_path, monkeypatch):
    (tmp_path / "token").write_text("t")
    data = {
        "tenants": {
            "skole-1": {
                "name": "Skole 1",
                "calendar": [{"first_day": "2026-08-13", "last_day": "2027-06-18", "breaks": []}],
                "adapters": {
                    "generic": {
                        "type": "generic",
                        "webhook_secrets": [{"env": "S1_SECRET"}],
                        "base_url": "http://localhost:8099/api",
                        "api_token": {"file": "token"},
                    }
                },
            }
        }
    }
    config = config_from_dict(data, base_dir=tmp_path)
    tenant = config.tenants["skole-1"]
    assert tenant.language == "nb"
    assert tenant.directory.roles == {}
    assert tenant.plan["absence.notice_missing"]["notice_school_days"] == 3
    assert tenant.adapters["generic"].settings["api_token"].reveal() == "t"
    assert config.path is None

    data["tenants"]["skole-1"]["language"] = "de"
    with pytest.raises(ConfigError) as caught:
        config_from_dict(data)
    assert caught.value.problems == ["tenants.skole-1.language: Must be one of: nb, nn, en."]


# --- Problems, each with its line ----------------------------------------------------------------------------------


def test_bad_url_points_at_the_base_url_line(config_dir):
    path = write_config(config_dir, VALID.replace("https://platform.example.no/api/connector", "not a url"))
    assert_one_problem(path, 14, "tenants.demo-skole.adapters.generic.base_url", "Not a valid URL.")


def test_unknown_key_is_named_at_its_line(config_dir):
    path = write_config(config_dir, VALID.replace("    language: nb\n", "    langauge: nb\n"))
    assert_one_problem(path, 5, "tenants.demo-skole.langauge", "Unknown field")


def test_unknown_top_level_key_is_named_at_its_line(config_dir):
    path = write_config(config_dir, VALID.replace("key_prefix: test", "key_prefx: test"))
    assert_one_problem(path, 1, "key_prefx", "Unknown field")


def test_unknown_adapter_type_points_at_the_type_line_and_lists_known_types(config_dir):
    path = write_config(config_dir, VALID.replace("type: generic", "type: moodel"))
    assert_one_problem(path, 12, "tenants.demo-skole.adapters.generic.type", "'moodel'", "generic")


def test_inline_secret_string_is_refused_without_repeating_it(config_dir):
    path = write_config(config_dir, VALID.replace("{file: secrets/api_token}", API_TOKEN))
    problem = assert_one_problem(path, 15, "tenants.demo-skole.adapters.generic.api_token", "by reference")
    assert API_TOKEN not in problem


def test_inline_secret_in_a_list_points_at_the_list_item(config_dir):
    path = write_config(config_dir, VALID.replace("[{env: DEMO_WEBHOOK_SECRET}]", f"\n          - {WEBHOOK_SECRET}"))
    problem = assert_one_problem(path, 14, "tenants.demo-skole.adapters.generic.webhook_secrets.0", "by reference")
    assert WEBHOOK_SECRET not in problem


def test_unknown_role_is_named_at_its_line(config_dir):
    path = write_config(config_dir, VALID.replace("7A: {contact_teacher:", "7A: {kontaktlaerer:"))
    assert_one_problem(path, 19, "tenants.demo-skole.directory.groups.7A.kontaktlaerer", "Unknown role 'kontaktlaerer'")


def test_bad_plan_value_points_at_the_rule_line(config_dir):
    path = write_config(config_dir, VALID.replace("{notice_school_days: 3}", "{notice_school_days: 99}"))
    assert_one_problem(path, 21, "tenants.demo-skole.plan.absence.notice_missing.notice_school_days", "30")


def test_unknown_rule_id_is_named_at_its_line(config_dir):
    path = write_config(config_dir, VALID.replace("absence.notice_missing:", "absence.notice_mising:"))
    assert_one_problem(path, 21, "tenants.demo-skole.plan.absence.notice_mising", "Unknown rule id")


def test_missing_calendar_file_points_at_the_referencing_line(config_dir):
    (config_dir / "calendar.yaml").unlink()
    path = config_dir / "connector.yaml"
    assert_one_problem(path, 7, "tenants.demo-skole.calendar.0.file", "calendar.yaml", "cannot be read")


def test_bad_calendar_file_points_at_the_referencing_line_and_says_what_is_wrong(config_dir):
    (config_dir / "calendar.yaml").write_text(CALENDAR.replace("last_day: 2027-06-18", "last_day: 2026-06-18"))
    path = config_dir / "connector.yaml"
    assert_one_problem(path, 7, "tenants.demo-skole.calendar.0.file", "calendar.yaml", "before first_day")


def test_calendar_file_with_yaml_syntax_error_names_the_file_line(config_dir):
    (config_dir / "calendar.yaml").write_text("first_day: 2026-08-13\nbreaks: [[2026-09-28\n")
    path = config_dir / "connector.yaml"
    assert_one_problem(path, 7, "tenants.demo-skole.calendar.0.file", "calendar.yaml:", "YAML syntax error")


def test_bad_inline_calendar_year_points_at_its_list_item(config_dir):
    path = write_config(config_dir, VALID.replace("[[2027-10-04, 2027-10-08]]", "[[2027-10-08, 2027-10-04]]"))
    assert_one_problem(path, 8, "tenants.demo-skole.calendar.1", "ends before it starts")


def test_overlapping_school_years_point_at_the_calendar_key(config_dir):
    path = write_config(config_dir, VALID.replace("first_day: 2027-08-19", "first_day: 2027-06-01"))
    assert_one_problem(path, 6, "tenants.demo-skole.calendar", "overlap")


def test_bad_extra_day_off_points_at_its_line(config_dir):
    path = write_config(config_dir, VALID.replace("[2026-11-06]", "[2026-11-31]"))
    assert_one_problem(path, 9, "tenants.demo-skole.extra_days_off.0", "YYYY-MM-DD")


def test_yaml_syntax_error_gives_file_and_line(config_dir):
    path = write_config(config_dir, VALID.replace("    name: Demo skole\n", "    name: [Demo skole\n"))
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:"), problems
    assert "YAML syntax error" in problems[0]
    line = int(problems[0][len(str(path)) + 1 :].split(":", 1)[0])
    assert 4 <= line <= 6


def test_missing_tenants_points_at_the_top_mapping(config_dir):
    path = write_config(config_dir, "key_prefix: test\nqueue_name: q\n")
    assert_one_problem(path, 1, "tenants", "Missing data for required field.")


def test_missing_required_tenant_field_points_at_the_tenant(config_dir):
    path = write_config(config_dir, VALID.replace("    name: Demo skole\n", ""))
    assert_one_problem(path, 3, "tenants.demo-skole.name", "Missing data for required field.")


def test_invalid_tenant_id_is_refused_because_it_becomes_part_of_a_url(config_dir):
    path = write_config(config_dir, VALID.replace("  demo-skole:", "  demo skole:"))
    assert_one_problem(path, 3, "tenants.demo skole", "Invalid name")


def test_duplicate_key_is_reported_because_yaml_would_silently_keep_the_last(config_dir):
    path = write_config(config_dir, VALID.replace("    language: nb\n", "    language: nb\n    language: nn\n"))
    assert_one_problem(path, 6, "tenants.demo-skole.language", "Duplicate key")


def test_every_problem_is_reported_in_one_run_in_line_order(config_dir):
    text = (
        VALID.replace("type: generic", "type: moodel")
        .replace("principal: u-rektor", "rektor: u-rektor")
        .replace("{notice_school_days: 3}", "{notice_school_days: -1}")
        .replace("language: nb", "language: sv")
    )
    problems = problems_of(write_config(config_dir, text))
    assert [p.split(":")[1] for p in problems] == ["5", "12", "17", "21"]


def test_missing_config_file_is_one_clear_problem(tmp_path):
    problems = problems_of(tmp_path / "nope.yaml")
    assert problems == [f"{tmp_path / 'nope.yaml'}: configuration file not found"]


def test_empty_config_file_asks_for_tenants(tmp_path):
    problems = problems_of(write_config(tmp_path, "# nothing yet\n"))
    assert len(problems) == 1 and "tenants" in problems[0]


# --- check_config and secrets --------------------------------------------------------------------------------------


def test_check_config_is_empty_when_config_and_secrets_are_fine(config_dir):
    assert check_config(config_dir / "connector.yaml") == []


def test_check_config_reports_unset_env_var_by_name(config_dir, monkeypatch):
    monkeypatch.delenv("DEMO_WEBHOOK_SECRET")
    problems = check_config(config_dir / "connector.yaml")
    assert problems == [
        f"{config_dir / 'connector.yaml'}:13: tenants.demo-skole.adapters.generic.webhook_secrets.0: "
        "environment variable DEMO_WEBHOOK_SECRET is not set"
    ]


def test_check_config_reports_empty_and_missing_secret_files_by_path(config_dir):
    (config_dir / "secrets" / "api_token").write_text("\n")
    problems = check_config(config_dir / "connector.yaml")
    assert len(problems) == 1 and ":15: " in problems[0] and "is empty" in problems[0]
    (config_dir / "secrets" / "api_token").unlink()
    problems = check_config(config_dir / "connector.yaml")
    assert len(problems) == 1 and "secrets/api_token cannot be read" in problems[0]


def test_check_config_reports_secrets_alongside_other_problems_of_the_same_adapter(config_dir, monkeypatch):
    monkeypatch.delenv("DEMO_WEBHOOK_SECRET")
    path = write_config(config_dir, VALID.replace("https://platform.example.no/api/connector", "nope"))
    problems = check_config(path)
    assert [p.split(": ", 1)[0].rsplit(":", 1)[1] for p in problems] == ["13", "14"]


@pytest.mark.parametrize("value, reason", [
    ("whsec_", "empty"),
    ("whsec_=", "empty key"),
    ("whsec_!!!!", "not base64"),
    ("whsec_c2VjcmV0 LXZhbHVl", "not base64"),
    ("whsec_c2VjcmV0-_XZhbHVl", "not base64"),
    ("whsec_c2VjcmV0LXZhbHVlA", "length"),
    ("whsec_c2VjcmV0LXZhbHVl\u00e6", "not base64"),
])
def test_check_config_reports_a_webhook_secret_that_is_no_standard_webhooks_secret(config_dir, monkeypatch, value,
                                                                                    reason):
    monkeypatch.setenv("DEMO_WEBHOOK_SECRET", value)
    problems = check_config(config_dir / "connector.yaml")
    assert len(problems) == 1, problems
    assert problems[0].startswith(
        f"{config_dir / 'connector.yaml'}:13: tenants.demo-skole.adapters.generic.webhook_secrets.0: "
        "environment variable DEMO_WEBHOOK_SECRET: not a Standard Webhooks secret")
    assert reason in problems[0]
    assert len(value) < 12 or value.removeprefix("whsec_") not in problems[0]  # the value is never repeated


def test_check_config_names_the_file_of_a_malformed_file_webhook_secret(config_dir):
    (config_dir / "secrets" / "webhook").write_text("whsec_\n")
    (config_dir / "secrets" / "webhook").chmod(0o600)
    path = write_config(config_dir, VALID.replace("{env: DEMO_WEBHOOK_SECRET}", "{file: secrets/webhook}"))
    (problem,) = check_config(path)
    assert problem.startswith(f"{path}:13: tenants.demo-skole.adapters.generic.webhook_secrets.0: secret file ")
    assert "secrets/webhook: not a Standard Webhooks secret" in problem


@pytest.mark.parametrize("value", [WEBHOOK_SECRET, WEBHOOK_SECRET.removeprefix("whsec_"),
                                   WEBHOOK_SECRET.rstrip("=")])
def test_check_config_takes_what_standard_webhooks_takes_prefixed_bare_or_unpadded(config_dir, monkeypatch, value):
    from standardwebhooks.webhooks import Webhook

    Webhook(value)  # the package takes it
    monkeypatch.setenv("DEMO_WEBHOOK_SECRET", value)
    assert check_config(config_dir / "connector.yaml") == []


def test_check_config_warns_of_secret_files_that_group_or_others_can_read(config_dir):
    token = config_dir / "secrets" / "api_token"
    token.chmod(0o640)
    warnings: list[str] = []
    assert check_config(config_dir / "connector.yaml", warnings) == []
    assert warnings == [
        f"{config_dir / 'connector.yaml'}:15: tenants.demo-skole.adapters.generic.api_token: warning: secret file "
        f"{token.resolve()} can be read by its group (mode 0640); make it 0600"
    ]
    token.chmod(0o604)
    warnings.clear()
    check_config(config_dir / "connector.yaml", warnings)
    assert "can be read by others (mode 0604)" in warnings[0]
    token.chmod(0o600)
    warnings.clear()
    assert check_config(config_dir / "connector.yaml", warnings) == [] and warnings == []


def test_load_config_does_not_need_the_secrets_to_be_available(config_dir, monkeypatch):
    monkeypatch.delenv("DEMO_WEBHOOK_SECRET")
    assert load_config(config_dir / "connector.yaml").tenants["demo-skole"]


def test_no_problem_ever_contains_a_secret_value(config_dir, monkeypatch):
    """Break everything around the secrets, then look for their values in every message and the exception text."""
    shutil.copy(config_dir / "secrets" / "api_token", config_dir / "secrets" / "other")
    broken = (
        VALID.replace("https://platform.example.no/api/connector", "not a url")
        .replace("type: generic", f"type: generic\n        extra: {{env: {WEBHOOK_SECRET}}}")
        .replace("[{env: DEMO_WEBHOOK_SECRET}]", f"[{{env: DEMO_WEBHOOK_SECRET}}, {API_TOKEN}]")
    )
    path = write_config(config_dir, broken)
    monkeypatch.setenv("OTHER", API_TOKEN)
    problems = check_config(path)
    assert problems
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    for text in [*problems, str(caught.value), repr(caught.value)]:
        assert WEBHOOK_SECRET not in text
        assert API_TOKEN not in text


def test_yaml_anchors_and_merge_keys_share_settings_without_duplicate_key_warnings(config_dir):
    text = VALID.replace("      generic:\n        type: generic", "      generic: &generic\n        type: generic")
    text += (
        "  annen-skole:\n"
        "    name: Annen skole\n"
        "    calendar: [{file: calendar.yaml}]\n"
        "    adapters:\n"
        "      generic:\n"
        "        <<: *generic\n"
        "        base_url: http://localhost:9000/api\n"
    )
    config = load_config(write_config(config_dir, text))
    other = config.tenants["annen-skole"].adapters["generic"].settings
    assert other["base_url"] == "http://localhost:9000/api"
    assert other["webhook_secrets"] == [SecretRef("env", "DEMO_WEBHOOK_SECRET")]


def test_language_no_is_explained_since_yaml_reads_it_as_false(config_dir):
    path = write_config(config_dir, VALID.replace("language: nb", "language: no"))
    assert_one_problem(path, 5, "tenants.demo-skole.language", "nb, nn, en", "true/false")


def test_a_file_secret_is_read_again_when_the_file_is_replaced(tmp_path):
    """Secrets are cached by the file's mtime and size, so a rotation by replacing the file takes effect."""
    import os

    from connector.config.secrets import SecretRef

    path = tmp_path / "secret"
    path.write_text("first-value\n")
    ref = SecretRef("file", str(path))
    assert ref.reveal() == "first-value"
    path.write_text("second-value-longer\n")
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 1_000_000))
    assert ref.reveal() == "second-value-longer"
    path.unlink()
    try:
        ref.reveal()
    except Exception as exc:
        assert "cannot be read" in str(exc) and "second-value" not in str(exc)
    else:
        raise AssertionError("a deleted secret file still answered")


@pytest.mark.parametrize("setting, field, words", [
    ("{responsible: class_parent_rep}", "responsible", "Must be one of"),  # a volunteer never reads a message
    ("{task_school_days: 11}", "task_school_days", "10"),
    ("{task_days: 2}", "task_days", "Unknown field"),
])
def test_a_bad_read_message_setting_is_named_at_its_line(config_dir, setting, field, words):
    path = write_config(config_dir, VALID.replace("absence.notice_missing: {notice_school_days: 3}",
                                                  f"escalation.read_message: {setting}"))
    problem = assert_one_problem(path, 21, f"tenants.demo-skole.plan.escalation.read_message.{field}", words)
    assert "class_parent_rep" not in problem.split(": ", 2)[2].split("Must be one of: ")[-1]
