"""Real-browser tests: Playwright's Python package driving Debian's chromium.

Every page any test opens runs under the site's Content-Security-Policy (enforced, as in
production) and reports each violation; a test fails on any, on a console complaint about the
Permissions-Policy header, and on a missing favicon (``WatchedBrowser``). Each journey also
runs axe-core on every page it visits (``check_accessibility``).
"""

import contextlib
import os
import shutil

import pytest
from axe_playwright_python.sync_playwright import Axe

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still
# synchronous, so Django's guard against ORM use inside a running loop does not apply here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Runs in every document before its own scripts: each violation goes to the test at once.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolation(
    event.violatedDirective + " blocked " + (event.blockedURI || "?") + " in " +
    event.documentURI + " (" + (event.sourceFile || "") + ":" + event.lineNumber + ")"
  );
});
"""


def watch(context, problems: list[str]) -> None:
    """Note in ``problems`` what no page may do: break the Content-Security-Policy (the
    ``securitypolicyviolation`` event, or the console where scripts are off), upset the browser
    with its Permissions-Policy, or miss its favicon."""
    context.expose_function("__cspViolation", lambda text: problems.append(f"CSP: {text}"))
    context.add_init_script(REPORT_VIOLATIONS)

    def on_console(message) -> None:
        text, where = message.text, message.location.get("url", "")
        if "Content Security Policy" in text or "Permissions-Policy" in text:
            problems.append(f"console: {text} ({where})")
        elif "favicon" in where and "Failed to load resource" in text:
            problems.append(f"favicon: {text} ({where})")

    def on_response(response) -> None:
        if "favicon" in response.url and response.status >= 400:
            problems.append(f"favicon: {response.status} {response.url}")

    context.on("console", on_console)
    context.on("response", on_response)
    close = context.close

    def flush_then_close(**options) -> None:
        flush(context)
        close(**options)

    context.close = flush_then_close


def flush(context) -> None:
    """A round trip to each page, so that reports it sent before are in."""
    for page in context.pages:
        # A page closed or navigating away has nothing more to say.
        with contextlib.suppress(Exception):
            page.evaluate("0")


# The WCAG 2.0 and 2.1 level A and AA rules; "best-practice" rules are advice, not a failure.
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}
FAILING_IMPACTS = {"serious", "critical"}
axe = Axe()


def check_accessibility(page) -> None:
    """Fail the test on any serious or critical WCAG A/AA violation axe-core finds on ``page``
    as it stands, naming each rule, its help text and the elements.

    axe goes in with ``page.evaluate``, which the page's Content-Security-Policy does not govern
    (a ``<script>`` tag with axe's source would be blocked by ``script-src 'self'``): so the check
    runs in the very page the journey is on, logged in or not, and neither the site's policy nor
    the violation watch (``watch``) is loosened for it. It needs a page with JavaScript on: in a
    context without it, ``evaluate`` never returns."""
    page.wait_for_load_state()
    results = axe.run(page, options=AXE_OPTIONS)
    failures = [
        violation
        for violation in results.response["violations"]
        if violation["impact"] in FAILING_IMPACTS
    ]
    lines = []
    for violation in failures:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        lines.extend(f"    {' '.join(map(str, node['target']))}" for node in violation["nodes"])
    assert not failures, f"accessibility on {page.url}:\n" + "\n".join(lines)


class WatchedBrowser:
    """The session's browser; each context it opens is watched (``watch``)."""

    def __init__(self, browser) -> None:
        self._browser = browser
        self.problems: list[str] = []

    def new_context(self, **options):
        context = self._browser.new_context(**options)
        watch(context, self.problems)
        return context

    def __getattr__(self, name):
        return getattr(self._browser, name)


@pytest.fixture(autouse=True)
def no_policy_violations(request):
    """Each browser test fails on what its pages reported (``watch``)."""
    if "browser" not in request.fixturenames:
        yield
        return
    browser = request.getfixturevalue("browser")
    browser.problems.clear()
    yield
    for context in browser.contexts:
        flush(context)
    assert browser.problems == [], "\n".join(browser.problems)


@pytest.fixture(scope="session")
def browser():
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("JOBBOARD_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed; bin/test installs Debian's chromium package")
        pytest.skip("chromium is not installed (bin/test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield WatchedBrowser(browser)
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def phone(browser, live_server):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, base_url=live_server.url, is_mobile=True
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
