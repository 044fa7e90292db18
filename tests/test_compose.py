"""The production shape in docker-compose.yml, checked by structure (CI has no Docker engine)."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "beat")


@pytest.fixture(scope="module")
def services() -> dict:
    with (ROOT / "docker-compose.yml").open() as f:
        return yaml.safe_load(f)["services"]


def command_of(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def environment_of(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: str(value) for key, value in env.items()}


def healthcheck_of(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def test_the_five_services(services):
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)


def test_backing_services_and_their_healthchecks(services):
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "pg_isready" in healthcheck_of(services["postgres"])
    assert services["redis"]["image"].startswith("redis:7")
    assert "redis-cli ping" in healthcheck_of(services["redis"])


def test_app_services_share_one_image(services):
    images = {services[name].get("image") for name in APP_SERVICES}
    builds = {str(services[name].get("build")) for name in APP_SERVICES}
    assert len(images) == 1
    assert None not in images
    assert builds == {"."}
    # Anything else built from the project (e.g. a migrate one-shot) uses the same image too.
    for name, service in services.items():
        if "build" in service:
            assert service.get("image") in images, name


def test_commands(services):
    web = command_of(services["web"])
    assert web.startswith("gunicorn jobboard.wsgi")
    assert "-w 2" in web or "--workers 2" in web or "--workers=2" in web
    assert command_of(services["worker"]).startswith("celery -A jobboard worker")
    assert command_of(services["beat"]).startswith("celery -A jobboard beat")


def test_exactly_one_beat(services):
    beats = [name for name, s in services.items() if " beat" in f" {command_of(s)}"]
    assert beats == ["beat"]
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1
    assert services["beat"].get("scale", 1) == 1


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment(services, name):
    env = environment_of(services[name])
    assert env["DATABASE_URL"].startswith("postgres://")
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:6379/")
    # Never a key baked into the file: compose refuses to start without one.
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")
    assert env["DEBUG"] == "false"
    assert "ALLOWED_HOSTS" in env


def test_web_keeps_database_connections_open(services):
    assert int(environment_of(services["web"])["CONN_MAX_AGE"]) > 0


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_backing_services(services, name):
    depends_on = services[name]["depends_on"]
    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert depends_on["redis"]["condition"] == "service_healthy"


def test_schema_and_demo_data_before_the_app(services):
    """A one-shot service migrates and loads the demo data; web, worker and beat wait for it."""
    [(setup_name, setup)] = [
        (name, s)
        for name, s in services.items()
        if "manage.py migrate" in command_of(s) and "load_demo_data" in command_of(s)
    ]
    assert command_of(setup).index("migrate") < command_of(setup).index("load_demo_data")
    for name in APP_SERVICES:
        condition = services[name]["depends_on"][setup_name]["condition"]
        assert condition == "service_completed_successfully", name


def test_web_healthcheck_fetches_a_page(services):
    web = services["web"]
    check = healthcheck_of(web)
    assert "python" in check
    assert "urllib" in check
    assert "/healthz/" in check
    assert any(str(port).endswith(":8000") for port in web["ports"])


def test_dockerfile_runs_as_non_root():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "collectstatic" in dockerfile
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users
    assert users[-1] not in {"root", "0"}
