"""The /ui/ dashboard in headless Chromium against a real gateway running a rollout with traffic.

Set UPDATE_SCREENSHOTS=1 to rewrite docs/img/ui-rollouts.png and docs/img/ui-rollout.png.
"""
import json
import os
import time

from playwright.sync_api import expect

from conftest import ROOT, http, own_ip

SHOTS = os.environ.get("UPDATE_SCREENSHOTS") == "1"


def wait_until(fn, timeout=30.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def shot(page, name):
    if SHOTS:
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ROOT / "docs" / "img" / name), full_page=True)


def test_rollouts_page_lists_the_rollout(gateway, page):
    page.goto(gateway.url + "/ui/")
    row = page.locator('table#rollouts tr[data-rollout="support-v2"]')
    expect(row).to_be_visible()
    expect(row.locator("td.stage")).to_have_text("canary-20")
    expect(row.locator(".pill")).to_have_text("running")
    # Health light turns green once the guardrails have evidence.
    expect(row.locator(".light.ok")).to_have_count(1, timeout=30_000)
    shot(page, "ui-rollouts.png")
    assert page.errors == []


def test_rollout_page_shows_stage_gates_and_a_guardrail_chart(gateway, page):
    page.goto(gateway.url + "/ui/#/r/support-v2")
    expect(page.locator("#stage")).to_have_text("canary-20")
    expect(page.locator(".timeline .step.current")).to_have_attribute("data-stage", "canary-20")
    gates = page.locator("#gates tr[data-gate]")
    expect(gates.first).to_be_visible(timeout=30_000)
    assert gates.count() >= 2
    # A chart per guardrail; points accrue with each check (1 s), polled every 2 s.
    chart = page.locator('[data-guardrail="error_rate"] svg.chart')
    expect(chart).to_be_visible(timeout=30_000)
    wait_until(lambda: chart.locator("circle.canary").count() >= (12 if SHOTS else 3), what="chart points")
    assert chart.locator("circle.control").count() >= 3
    expect(page.locator("#traffic-table")).to_be_visible()
    expect(page.locator("#report .card").first).to_be_visible(timeout=30_000)
    shot(page, "ui-rollout.png")
    assert page.errors == []


def test_pairs_page_filters_by_class(gateway, page):
    page.goto(gateway.url + "/ui/#/r/support-v2/pairs")
    rows = page.locator("#pairs tbody tr")
    expect(rows.first).to_be_visible(timeout=30_000)
    wait_until(lambda: len(set(rows.evaluate_all("rs => rs.map(r => r.dataset.class)"))) > 1,
               what="pairs of several classes")
    expect(page.locator('#class option[value="transfers"]')).to_have_count(1)
    page.select_option("#class", "transfers")
    wait_until(lambda: rows.count() > 0 and set(rows.evaluate_all("rs => rs.map(r => r.dataset.class)")) == {"transfers"},
               what="only transfers pairs")
    # Still filtered after the next poll.
    page.wait_for_timeout(2500)
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.class)")) == {"transfers"}
    assert page.errors == []


def test_pause_with_a_reason_changes_the_state_in_the_admin_api_and_the_page(gateway, page):
    page.goto(gateway.url + "/ui/#/r/support-v2")
    expect(page.locator("#state")).to_have_text("running")
    page.click('button[data-action="pause"]')
    expect(page.locator("#confirm")).to_be_visible()
    # Without a reason nothing is sent.
    page.click("#confirm-ok")
    status, body, _ = http("GET", gateway.url + "/admin/rollouts/support-v2")
    assert json.loads(body)["status"]["phase"] == "stage"
    page.fill("#confirm-reason", "dashboard test: checking the pause path")
    page.click("#confirm-ok")
    expect(page.locator("#state")).to_have_text("paused")
    status, body, _ = http("GET", gateway.url + "/admin/rollouts/support-v2")
    assert status == 200
    assert json.loads(body)["status"]["phase"] == "paused"
    expect(page.locator("#audit-log")).to_contain_text("dashboard test: checking the pause path")
    # Resume from the page too, so the session's other tests see a running rollout.
    page.click('button[data-action="resume"]')
    page.fill("#confirm-reason", "dashboard test done")
    page.click("#confirm-ok")
    expect(page.locator("#state")).to_have_text("running")
    assert page.errors == []


def test_non_loopback_clients_are_refused_without_a_token(gateway):
    base = f"http://{own_ip()}:{gateway.port}"
    # The data plane answers on that address, so the refusals below are the access rule's.
    assert http("GET", base + "/healthz")[0] == 200
    for path in ["/ui/", "/ui/app.js", "/ui/api/rollouts", "/ui/api/rollouts/support-v2",
                 "/ui/api/rollouts/support-v2/history", "/ui/api/rollouts/support-v2/pairs"]:
        status, body, _ = http("GET", base + path)
        assert status == 401, (path, status)
        assert "support-v2" not in body
    status, _, _ = http("POST", base + "/ui/api/rollouts/support-v2/pause", {"reason": "x"},
                        {"x-rampart-ui": "1"})
    assert status == 401


def test_with_a_token_the_page_asks_for_it_once_and_keeps_it_for_the_session(token_gateway, page):
    base = f"http://{own_ip()}:{token_gateway.port}"
    status, body, headers = http("GET", base + "/ui/")
    assert status == 401 and "admin token" in body and "support-v2" not in body
    # The sign-in form is a page for the browser, not an API error wrapped around one.
    assert headers["content-type"].startswith("text/html") and body.lstrip().startswith("<!doctype html>")
    assert http("GET", base + "/ui/api/rollouts")[0] == 401
    assert http("GET", base + "/ui/api/rollouts", headers={"authorization": "Bearer wrong"})[0] == 401
    status, body, _ = http("GET", base + "/ui/api/rollouts",
                           headers={"authorization": f"Bearer {token_gateway.token}"})
    assert status == 200 and "support-v2" in body

    page.goto(base + "/ui/")
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    expect(page.locator("#error")).to_have_text("Wrong token.")
    page.fill("#token", token_gateway.token)
    page.click("button[type=submit]")
    expect(page.locator('table#rollouts tr[data-rollout="support-v2"]')).to_be_visible()
    # Kept for the session: another page of the same browser context needs no new sign-in.
    other = page.context.new_page()
    other.goto(base + "/ui/#/r/support-v2")
    expect(other.locator("#stage")).to_have_text("canary-20")
    # The cookie alone does not authorize an action without the dashboard's header.
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    status, _, _ = http("POST", base + "/ui/api/rollouts/support-v2/pause", {"reason": "csrf"},
                        {"cookie": f"rampart_ui={cookies['rampart_ui']}"})
    assert status == 401


def test_rollout_page_shows_outcomes_per_cohort_once_there_are_any(gateway, page):
    page.goto(gateway.url + "/ui/#/r/support-v2")
    expect(page.locator("#gates tr[data-gate]").first).to_be_visible(timeout=30_000)
    expect(page.locator("#outcomes-section")).to_be_hidden()
    # Key-only outcomes: attributed by the sticky bucket at the current 20 % canary.
    items = [{"routing_key": f"user-{i}", "rollout": "support-v2", "name": "csat", "value": 60 + i % 40}
             for i in range(300)]
    status, body, _ = http("POST", gateway.url + "/v1/outcomes", items)
    assert status == 200, body
    rows = page.locator('#outcomes-table tr[data-outcome="csat"]')
    expect(rows.first).to_be_visible(timeout=30_000)
    cohorts = rows.evaluate_all("rs => rs.map(r => r.dataset.cohort)")
    assert set(cohorts) == {"control", "canary"}
    # The page shows what the status API says: n per cohort adds up to what was posted.
    status, body, _ = http("GET", gateway.url + "/admin/rollouts/support-v2")
    summary = json.loads(body)["status"]["outcomes"][0]
    assert summary["name"] == "csat"
    assert sum(c["n"] for c in summary["cohorts"]) == 300
    for c in summary["cohorts"]:
        cell = page.locator(f'#outcomes-table tr[data-cohort="{c["cohort"]}"] td').nth(2)
        expect(cell).to_have_text(str(c["n"]))
        assert c["ci_low"] < c["mean"] < c["ci_high"]
    assert summary["difference"] is not None
    assert page.errors == []
