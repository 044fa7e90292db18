"""A first run of the production shape over plain HTTP, on a real hostname, before TLS.

The browser reaches nginx and gunicorn (tests/nginx_stack.py) by the site's own name. A browser
never sends a cookie marked Secure back over http:// (localhost excepted), so with Secure
cookies every form on such a site would fail its CSRF check.
"""

import shutil

import pytest

from tests.e2e.conftest import CHROMIUM_ARGS
from tests.nginx_stack import SITE_HOST

# Committed data (the failed log-in's records are cleared afterwards): gunicorn sees it.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_forms_work_on_a_first_run_over_plain_http_on_a_real_hostname(browser, nginx_stack):
    # A second browser of the same Playwright session, resolving the site's name to this host.
    named = browser.browser_type.launch(
        executable_path=shutil.which("chromium"),
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {SITE_HOST} 127.0.0.1"],
    )
    try:
        page = named.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"http://{SITE_HOST}:{nginx_stack.nginx_port}/accounts/login/")
        page.fill("input[name=username]", "nobody@example.com")
        page.fill("input[name=password]", "not-the-password")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        text = page.inner_text("body")
    finally:
        named.close()
    assert "CSRF" not in text
    assert "That email and password do not match an account" in text
