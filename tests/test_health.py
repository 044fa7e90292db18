import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_health_endpoint_reports_database_and_cache_as_json(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}
    assert "no-cache" in response["Cache-Control"]


def test_health_endpoint_says_failing_with_503_when_a_service_is_down(client, monkeypatch):
    from jobboard import health

    def broken() -> bool:
        raise ConnectionError("cache unreachable")

    monkeypatch.setattr(health, "_check_cache", broken)
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "cache": "failing"}


def test_health_endpoints_answer_over_plain_http_when_the_site_redirects_to_https(client, settings):
    """Compose's web healthcheck asks http://127.0.0.1:8000/healthz/ inside the container."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get(reverse("postings:list")).status_code == 301
    assert client.get(reverse("healthz")).status_code == 200
    assert client.get(reverse("healthz_workers")).status_code in (200, 503)


def test_health_endpoint_only_answers_get_and_head(client):
    assert client.post(reverse("healthz")).status_code == 405
    for name in ("healthz", "healthz_workers"):  # load balancers check with HEAD too
        response = client.head(reverse(name))
        assert response.status_code in (200, 503) and response.content == b""


def test_every_model_has_an_admin_page():
    from django.apps import apps
    from django.contrib import admin

    ours = [
        m for m in apps.get_models() if m._meta.app_label in ("accounts", "postings", "reporting")
    ]
    missing = [m.__name__ for m in ours if not admin.site.is_registered(m)]
    assert missing == []
