"""Issue 18: the status page in a real headless Chromium (Debian's package, driven by Selenium)."""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.core.clock import FakeClock
from bot.core.values import Mention
from bot.ledger.publications import PublicationKey
from bot.ledger.reshares import NewDecision, ReshareLedger
from bot.worker.ops import start_http
from bot.worker.runtime import Worker

REPO = Path(__file__).resolve().parents[2]
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PASSWORD = "correct horse battery staple"
LAUNCH = datetime(2022, 1, 12, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)),
    reason="Chromium from Debian is needed (scripts/setup installs chromium and chromium-driver)",
)


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium with a fresh profile and nothing talking to the network but the page."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=900,1600",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _demo_campaign(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped campaign (what `make demo` plays), its credential variables set to stand-ins: nothing is sent."""
    for folder in ("config", "posts", "schedules"):
        shutil.copytree(REPO / folder, root / folder)
    import yaml

    accounts = yaml.safe_load((root / "config" / "accounts.yaml").read_text(encoding="utf-8"))["accounts"]
    media_host = root / "config" / "media_host.yaml"
    bucket = yaml.safe_load(media_host.read_text(encoding="utf-8"))["media_host"] if media_host.exists() else {}
    for credentials in [*(entry["credentials"] for entry in accounts.values()), bucket.get("credentials", {})]:
        for variable in credentials.values():
            monkeypatch.setenv(variable, f"stand-in-{uuid.uuid4().hex}")


def _record_launch(worker: Worker) -> None:
    """The launch went out on five accounts; X refused it on x-article19."""
    ledger, campaign = worker.ledger, worker.campaign
    for account_id, account in campaign.accounts.items():
        key = PublicationKey(campaign.name, LAUNCH, "post:launch", account_id)
        row = ledger.claim(
            key, "test", timedelta(minutes=10), post="launch", schedule="launch", platform=account.platform
        )
        assert row is not None
        n, _ = ledger.begin_attempt(row.id, "test", prior=0)
        if account_id == "x-article19":
            ledger.record_failed(
                row.id, "rejected", "ContentRejected: x refused the request: media type not allowed", attempt=n
            )
        else:
            ledger.record_published(row.id, f"r{n}{account_id}", f"https://example.org/{account_id}/launch", attempt=n)


def _review_item(worker: Worker) -> int:
    mention = Mention(
        remote_id=uuid.uuid4().hex,
        url="https://mastodon.social/@supporter/1",
        author_id="7",
        author_handle="supporter@mastodon.social",
        author_name="A Supporter",
        text="Andrei and Irina must be freed #FreeAndreiandIrina",
        created_at=LAUNCH,
    )
    item = NewDecision("mastodon.social", "mastodon", "*", "mastodon-a19", mention, "review", "queued", "review_mode")
    [row_id] = ReshareLedger(worker.ledger.engine, worker.campaign.name).record(LAUNCH + timedelta(minutes=20), [item])
    assert row_id is not None
    return row_id


def _collect(*args: Any, **kwargs: Any) -> dict[str, Any]:
    from bot.cli.status import collect

    return collect(*args, **kwargs)


def _decide(worker: Worker):
    from bot.cli.review import decide

    return lambda action, ids: decide(
        ReshareLedger(worker.ledger.engine, worker.campaign.name), action, ids, worker.clock.now()
    )


def _fetch_status(browser: Any, url: str, body: str, headers: dict[str, str]) -> int:
    """POST from the page's origin with fetch(); the HTTP status the endpoint answered."""
    return int(
        browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {method: 'POST', body: arguments[1], headers: arguments[2], redirect: 'manual', credentials: 'omit'})"
            ".then(r => done(r.status), e => done(-1));",
            url,
            body,
            {"Content-Type": "application/x-www-form-urlencoded", **headers},
        )
    )


def test_status_page_in_chromium_shows_calendar_failure_and_review_and_refuses_approval_without_password(
    tmp_path, monkeypatch, browser
) -> None:
    """The demo campaign's week, the refused launch with its reason and a review item render in Chromium;
    approving without the password (or without the page's CSRF token) is refused, with both it works."""
    from selenium.webdriver.common.by import By

    _demo_campaign(tmp_path, monkeypatch)
    clock = FakeClock(LAUNCH + timedelta(minutes=30))
    worker = Worker(tmp_path, clock=clock, database_url=f"sqlite:///{tmp_path / 'ledger.db'}", threads=4)
    _record_launch(worker)
    review_id = _review_item(worker)
    http = start_http(worker, _collect, _decide(worker), {"BOT_HTTP_PORT": "0", "BOT_HTTP_PASSWORD": PASSWORD})
    try:
        worker.start()
        browser.get(http.url)
        calendar = browser.find_element(By.ID, "calendar").text
        assert "Wednesday 12 January 2022" in calendar and "Wednesday 19 January 2022" in calendar
        assert "launch" in calendar and "001-supporter" in calendar and "planned" in calendar
        links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#calendar a")]
        assert "https://example.org/x-index/launch" in links
        failure = browser.find_element(By.CSS_SELECTOR, "#failures .failure").text
        assert "x-article19" in failure and "rejected" in failure and "media type not allowed" in failure
        review = browser.find_element(By.CSS_SELECTOR, "#review .review-item").text
        assert f"#{review_id}" in review and "supporter@mastodon.social" in review
        assert not browser.find_elements(By.CSS_SELECTOR, "#review button")  # read-only until signed in
        assert "Worker running" in browser.find_element(By.ID, "health").text
        shot = tmp_path / "status-page.png"
        browser.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("BOT_STATUS_SCREENSHOT"):  # docs/status-page.png is made this way
            shutil.copy(shot, os.environ["BOT_STATUS_SCREENSHOT"])

        browser.get(http.url + "healthz")  # a page of the same origin without the status page's CSP
        form = f"action=approve&id={review_id}&csrf=guess"
        assert _fetch_status(browser, http.url + "review", form, {}) == 401
        import base64

        auth = {"Authorization": "Basic " + base64.b64encode(f"staff:{PASSWORD}".encode()).decode()}
        wrong = {"Authorization": "Basic " + base64.b64encode(b"staff:wrong").decode()}
        assert _fetch_status(browser, http.url + "review", form, wrong) == 401
        assert _fetch_status(browser, http.url + "review", form, auth) == 403  # no valid CSRF token
        assert [r.status for r in ReshareLedger(worker.ledger.engine, worker.campaign.name).rows(ids=[review_id])] == [
            "queued"
        ]

        host = http.url.removeprefix("http://")
        browser.get(f"http://staff:{PASSWORD.replace(' ', '%20')}@{host}review")
        browser.find_element(By.CSS_SELECTOR, "#review button[value=approve]").click()
        assert "approved 1" in notice(browser)
        [row] = ReshareLedger(worker.ledger.engine, worker.campaign.name).rows(ids=[review_id])
        assert row.status == "pending" and row.reason == "approved"
    finally:
        http.close()
        worker.close()


def test_without_a_password_the_page_is_read_only(tmp_path, monkeypatch, browser) -> None:
    """No BOT_HTTP_PASSWORD: the page shows no sign-in, and /review is forbidden even to a correct-looking login."""
    from selenium.webdriver.common.by import By

    _demo_campaign(tmp_path, monkeypatch)
    worker = Worker(tmp_path, clock=FakeClock(LAUNCH), database_url=f"sqlite:///{tmp_path / 'ledger.db'}", threads=4)
    review_id = _review_item(worker)
    http = start_http(worker, _collect, _decide(worker), {"BOT_HTTP_PORT": "0"})
    try:
        browser.get(http.url)
        assert f"#{review_id}" in browser.find_element(By.ID, "review").text
        assert not browser.find_elements(By.LINK_TEXT, "Sign in to approve or reject")
        browser.get(http.url + "healthz")
        assert _fetch_status(browser, http.url + "review", f"action=approve&id={review_id}", {}) == 403
    finally:
        http.close()
        worker.close()


def notice(browser) -> str:
    """The notice of the page a form's button led to: ``click`` may return before that page has loaded (a CI run
    looked for the notice on the page the button was on)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 10).until(expected_conditions.presence_of_element_located((By.ID, "notice"))).text


def test_a_publication_needing_attention_is_shown_and_resolved_from_the_page(tmp_path, monkeypatch, browser) -> None:
    """A publication nobody can tell went out is listed at the top with why; signed in, "It went out" with the
    post's URL records it published, by the status page."""
    from selenium.webdriver.common.by import By

    _demo_campaign(tmp_path, monkeypatch)
    clock = FakeClock(LAUNCH + timedelta(minutes=30))
    worker = Worker(tmp_path, clock=clock, database_url=f"sqlite:///{tmp_path / 'ledger.db'}", threads=4)
    key = PublicationKey(worker.campaign.name, LAUNCH, "post:launch", "x-index")
    row = worker.ledger.claim(key, "test", timedelta(minutes=10), post="launch", platform="x")
    n = worker.ledger.start_attempt(row.id, "test")
    worker.ledger.record_needs_attention(row.id, "OutcomeUnknown: the connection dropped after sending", attempt=n)
    http = start_http(worker, _collect, _decide(worker), {"BOT_HTTP_PORT": "0", "BOT_HTTP_PASSWORD": PASSWORD})
    try:
        browser.get(http.url)
        item = browser.find_element(By.CSS_SELECTOR, "#attention .attention-item").text
        assert f"#{row.id}" in item and "x-index" in item and "connection dropped after sending" in item
        assert not browser.find_elements(By.CSS_SELECTOR, "#attention button")  # read-only until signed in
        host = http.url.removeprefix("http://")
        browser.get(f"http://staff:{PASSWORD.replace(' ', '%20')}@{host}review")
        browser.find_element(By.CSS_SELECTOR, "#attention input[name=url]").send_keys("https://x.com/index/status/17")
        browser.find_element(By.CSS_SELECTOR, "#attention button[value=published]").click()
        assert f"#{row.id} recorded as published" in notice(browser)
        assert not browser.find_elements(By.ID, "attention")
        done = worker.ledger.get(key)
        assert (done.state, done.url, done.resolved_by) == ("published", "https://x.com/index/status/17", "status page")
    finally:
        http.close()
        worker.close()
