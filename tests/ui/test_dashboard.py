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
    # The threshold, and the anytime-valid bound once the guardrail has evidence.
    expect(chart.locator("line.threshold")).to_have_count(1)
    expect(chart.locator("path.bound")).to_have_count(1, timeout=30_000)
    # Every gate with its evidence: samples seen and needed, ETA.
    heads = page.locator("#gates thead th").all_inner_texts()
    assert {"samples seen", "samples needed", "ETA"} <= set(heads), heads
    # Traffic per cohort with the sample-ratio check.
    expect(page.locator("#traffic-table")).to_be_visible()
    assert page.locator("#traffic-table tbody tr").all_inner_texts()[0].startswith("control")
    expect(page.locator("#traffic")).to_contain_text("Sample-ratio check")
    # The comparison report's sections, and per class.
    expect(page.locator("#report .card").first).to_be_visible(timeout=30_000)
    titles = page.locator("#report .card h3").all_inner_texts()
    for section in ["Equivalence", "Length", "Refusals", "Openings", "Judge win rate",
                    "Cost per request", "Latency p95"]:
        assert section in titles, (section, titles)
    expect(page.locator("#classes tbody tr")).to_have_count(3)
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


def column(rows, key):
    return rows.evaluate_all(f"rs => rs.map(r => r.dataset.{key})")


def test_pairs_page_filters_by_tenant_and_by_flag_and_pages(gateway, page):
    page.goto(gateway.url + "/ui/#/r/support-v2/pairs")
    rows = page.locator("#pairs tbody tr")
    expect(rows.first).to_be_visible(timeout=30_000)
    wait_until(lambda: set(column(rows, "tenant")) == {"acme", "globex"}, what="pairs of both tenants")
    page.select_option("#tenant", "globex")
    wait_until(lambda: rows.count() > 0 and set(column(rows, "tenant")) == {"globex"},
               what="only globex pairs")

    # The candidate refuses some answers: with the refusal flag, every pair shown has it and a
    # side marked as refusing; the tenant filter still holds.
    page.select_option("#flag", "refusal")
    wait_until(lambda: rows.count() > 0 and all("refusal" in f.split() for f in column(rows, "flags"))
               and set(column(rows, "tenant")) == {"globex"}, what="only refused globex pairs")
    for i in range(rows.count()):
        expect(rows.nth(i).locator("td.text .pill")).to_contain_text(["refusal"])
    # The answers are in two registers, so most pairs have low similarity.
    page.select_option("#flag", "low_similarity")
    wait_until(lambda: rows.count() > 0 and all("low_similarity" in f.split() for f in column(rows, "flags")),
               what="only low-similarity pairs")
    # The same filters through the admin API: the page shows what the API answers.
    status, body, _ = http("GET", gateway.url + "/admin/rollouts/support-v2/pairs?tenant=globex&flag=low_similarity&limit=5")
    assert status == 200
    got = json.loads(body)
    assert got["pairs"] and all(p["tenant"] == "globex" and "low_similarity" in p["flags"] for p in got["pairs"])
    assert http("GET", gateway.url + "/admin/rollouts/support-v2/pairs?flag=nope")[0] == 400

    # Paged: Older shows the next 20 (older, none repeated), Newer goes back.
    page.select_option("#flag", "")
    page.select_option("#tenant", "")
    wait_until(lambda: rows.count() == 20 and page.locator("#older").is_enabled(), what="a full first page")
    expect(page.locator("#newer")).to_be_disabled()
    # Page 1 is polled while traffic runs, so new pairs can replace it at any moment: read the
    # page shown and press Older in one task of the page, as a user presses it on what they see.
    first = page.evaluate("""() => {
        const ts = [...document.querySelectorAll('#pairs tbody tr')].map((r) => Number(r.dataset.ts));
        document.getElementById('older').click();
        return ts;
    }""")
    expect(page.locator("#pairs-count")).to_contain_text("21–40")
    second = [int(t) for t in column(rows, "ts")]
    assert len(second) == 20 and max(second) <= min(first)
    assert second == sorted(second, reverse=True)
    page.click("#newer")
    expect(page.locator("#pairs-count")).to_contain_text("1–20")
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
    # The stage timeline lists the decision with its reason.
    expect(page.locator("#timeline")).to_contain_text("dashboard test: checking the pause path")
    # Resume from the page too, so the session's other tests see a running rollout.
    page.click('button[data-action="resume"]')
    page.fill("#confirm-reason", "dashboard test done")
    page.click("#confirm-ok")
    expect(page.locator("#state")).to_have_text("running")
    assert page.errors == []


def test_a_change_made_elsewhere_shows_at_the_pages_next_poll(gateway, page):
    page.goto(gateway.url + "/ui/#/r/support-v2")
    expect(page.locator("#state")).to_have_text("running")
    # Live: the page polls every 2 s at most, without a reload.
    assert page.evaluate("POLL_MS") <= 2000
    status, _, _ = http("POST", gateway.url + "/admin/rollouts/support-v2/pause",
                        {"reason": "live test: paused from the admin API"})
    assert status == 200
    with page.expect_response(lambda r: r.url.endswith("/ui/api/rollouts/support-v2")):
        pass
    expect(page.locator("#state")).to_have_text("paused")
    expect(page.locator("#audit-log")).to_contain_text("live test: paused from the admin API")
    status, _, _ = http("POST", gateway.url + "/admin/rollouts/support-v2/resume", {"reason": "live test done"})
    assert status == 200
    with page.expect_response(lambda r: r.url.endswith("/ui/api/rollouts/support-v2")):
        pass
    expect(page.locator("#state")).to_have_text("running")
    assert page.errors == []


def test_non_loopback_clients_are_refused_without_a_token(gateway):
    base = f"http://{own_ip()}:{gateway.port}"
    # The data plane answers on that address, so the refusals below are the access rule's.
    assert http("GET", base + "/healthz")[0] == 200
    # The page, its assets and every data call it makes.
    for path in ["/ui/", "/ui/app.js", "/ui/app.css", "/ui/api/rollouts", "/ui/api/rollouts/support-v2",
                 "/ui/api/rollouts/support-v2/history", "/ui/api/rollouts/support-v2/events?limit=50",
                 "/ui/api/rollouts/support-v2/report", "/ui/api/rollouts/support-v2/pairs?limit=20",
                 "/ui/api/rollouts/support-v2/pairs?limit=20&tenant=acme&flag=refusal"]:
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
