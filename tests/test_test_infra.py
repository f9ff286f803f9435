"""The two pieces of test infrastructure other tests stand on: a private Redis that survives kill -9 through its
AOF, and a real headless browser."""
from __future__ import annotations


def test_private_redis_keeps_acknowledged_writes_across_kill_9(redis_server):
    redis_server.client().set("infra:k", "v")
    redis_server.restart(hard=True)
    assert redis_server.client().get("infra:k") == b"v"
    assert any("appendonly" in p.name for p in redis_server.files())


def test_headless_browser_renders_a_page(browser, tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<!doctype html><title>t</title><p id=x>hei</p><script>document.getElementById('x')"
                    ".textContent += ' verden'</script>", encoding="utf-8")
    browser.get(page.as_uri())
    assert browser.find_element("id", "x").text == "hei verden"
    assert browser.screenshot("infra-browser").stat().st_size > 0
