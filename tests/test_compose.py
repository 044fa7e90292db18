"""The production shape in docker-compose.yml, checked by structure (CI has no Docker engine)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "beat")


@pytest.fixture(scope="module")
def compose() -> dict:
    with (ROOT / "docker-compose.yml").open() as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


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


def test_the_six_services(services):
    assert {"postgres", "redis", "nginx", "web", "worker", "beat"} <= set(services)


def test_compose_v2_file_states_its_minimum_version():
    """Top-level name: and env_file's required: need Compose v2.24; the README says so."""
    assert "v2.24" in (ROOT / "docker-compose.yml").read_text().split("\nname:")[0]
    assert "Docker Compose v2.24 or later" in (ROOT / "README.md").read_text()


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
    # Links in emails from the worker point at the real site: compose refuses to start without.
    assert env["SITE_URL"].startswith("${SITE_URL:?")
    # nginx is the one proxy in front, so its X-Forwarded-For names the client.
    assert env["TRUSTED_PROXY_COUNT"] == "${TRUSTED_PROXY_COUNT:-1}"
    # Mail goes to the log until EMAIL_URL is set (and the processes say so at start).
    assert env["EMAIL_URL"] == "${EMAIL_URL:-consolemail://}"


@pytest.mark.parametrize("name", (*APP_SERVICES, "migrate"))
def test_app_services_see_every_variable_in_dot_env(services, name):
    """.env also fills the app's environment (DEFAULT_FROM_EMAIL, SECURE_*), not only ${...}."""
    assert services[name]["env_file"] == [{"path": ".env", "required": False}]


@pytest.mark.parametrize("name", ("web", "worker", "migrate"))
def test_cvs_and_media_live_in_named_volumes_shared_by_web_and_worker(services, name, compose):
    mounts = dict(reversed(volume.split(":")[:2]) for volume in services[name]["volumes"])
    assert mounts["/app/var/private"] in compose["volumes"]
    assert mounts["/app/var/media"] in compose["volumes"]
    assert mounts == {"/app/var/private": "private-files", "/app/var/media": "media"}


def test_beat_keeps_its_schedule_in_a_volume(services, compose):
    command = command_of(services["beat"])
    assert "--schedule=/app/var/beat/celerybeat-schedule" in command
    assert services["beat"]["volumes"] == ["beat-schedule:/app/var/beat"]
    assert "beat-schedule" in compose["volumes"]


def test_the_image_owns_the_volume_mount_points():
    """A new named volume takes its owner from the image's directory: the app must write there."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "mkdir -p /app/var/private /app/var/media /app/var/beat" in dockerfile
    assert "chown -R app:app /app/var" in dockerfile


def test_web_keeps_database_connections_open(services):
    assert int(environment_of(services["web"])["CONN_MAX_AGE"]) > 0


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_backing_services(services, name):
    depends_on = services[name]["depends_on"]
    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert depends_on["redis"]["condition"] == "service_healthy"


def test_schema_before_the_app_and_demo_data_only_when_asked(services):
    """A one-shot service migrates (and loads the demo data if asked); the app waits for it."""
    [(setup_name, setup)] = [
        (name, s) for name, s in services.items() if "manage.py migrate" in command_of(s)
    ]
    command = command_of(setup)
    assert command.index("migrate") < command.index("load_demo_data")
    assert 'if [ "$$LOAD_DEMO_DATA" = 1 ]; then python manage.py load_demo_data; fi' in command
    assert environment_of(setup)["LOAD_DEMO_DATA"] == "${LOAD_DEMO_DATA:-0}"
    for name in APP_SERVICES:
        condition = services[name]["depends_on"][setup_name]["condition"]
        assert condition == "service_completed_successfully", name


@pytest.mark.django_db(transaction=True)
def test_the_migrate_one_shot_loads_no_demo_data_by_default(services, tmp_path):
    """Run the one-shot's own command against the test database: migrate, and nothing else."""
    from postings.models import Company, Posting
    from tests.worker import worker_database_url

    command = command_of(services["migrate"]).removeprefix("sh -c ").replace("$$", "$")
    env = {k: v for k, v in os.environ.items() if k not in {"LOAD_DEMO_DATA", "DEBUG"}}
    env |= {"DATABASE_URL": worker_database_url(), "VAR_DIR": str(tmp_path)}
    result = subprocess.run(  # noqa: S603 (compose's own command, our interpreter)
        ["sh", "-c", command],  # noqa: S607
        cwd=ROOT,
        env=env | {"PATH": f"{Path(sys.executable).parent}:{env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No migrations to apply" in result.stdout
    assert Posting.objects.count() == 0
    assert Company.objects.count() == 0


def test_web_healthcheck_fetches_a_page(services):
    web = services["web"]
    check = healthcheck_of(web)
    assert "python" in check
    assert "urllib" in check
    assert "/healthz/" in check


def test_only_nginx_is_published_and_gunicorn_sits_behind_it(services):
    nginx = services["nginx"]
    assert nginx["image"].startswith("nginx:")
    assert nginx["ports"] == ["${WEB_PORT:-8000}:8000"]
    assert [name for name, s in services.items() if s.get("ports")] == ["nginx"]
    # The repository's config, rendered by the official image's envsubst step at start.
    [mount] = nginx["volumes"]
    source, target, mode = mount.split(":")
    assert (ROOT / source).is_file()
    assert source == "./deploy/nginx/jobboard.conf.template"
    assert target == "/etc/nginx/templates/default.conf.template"
    assert mode == "ro"
    env = environment_of(nginx)
    assert env["JOBBOARD_UPSTREAM"] == "web:8000"
    assert env["JOBBOARD_LISTEN"] == "8000"
    # Only these names are substituted: nginx's own $host, $scheme, ... stay as they are.
    assert env["NGINX_ENVSUBST_FILTER"] == "^JOBBOARD_"
    assert "--bind=0.0.0.0:8000" in command_of(services["web"])
    assert nginx["depends_on"]["web"] == {"condition": "service_healthy", "restart": True}


@pytest.mark.parametrize(("name", "node"), [("worker", "celery"), ("beat", "celerybeat")])
def test_worker_and_beat_have_healthchecks(services, name, node):
    check = services[name]["healthcheck"]
    assert check["test"][0] == "CMD-SHELL"
    assert f"celery -A jobboard inspect ping -d {node}@$$HOSTNAME" in check["test"][1]
    assert "--enable-remote-control" in command_of(services["beat"])


def test_dockerfile_runs_as_non_root():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "collectstatic" in dockerfile
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users
    assert users[-1] not in {"root", "0"}


def wait_for_success(
    command: str, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess:
    """Run a shell command until it exits 0 or ``timeout`` passes; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = subprocess.run(  # noqa: S603 (compose's own healthcheck)
            ["sh", "-c", command],  # noqa: S607
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode == 0 or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


@pytest.mark.worker
@pytest.mark.parametrize("name", ["worker", "beat"])
def test_worker_and_beat_answer_their_healthchecks(services, name, tmp_path, settings):
    """Compose's own command for the service, then its own healthcheck against it."""
    from tests.worker import worker_database_url

    if not settings.REDIS_URL:
        pytest.skip("needs Redis (set REDIS_URL): the healthchecks ping through the broker")
    queue = f"compose-health-{name}-{os.getpid()}"
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        # Anything beat schedules goes to a queue of this test's own, which nobody consumes.
        "CELERY_QUEUE": queue,
        "VAR_DIR": str(tmp_path),
        # Compose's default: mail to the log, which the worker says at start.
        "EMAIL_URL": "consolemail://",
        # In a container, $HOSTNAME is the host name Celery puts in its node name.
        "HOSTNAME": socket.gethostname(),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    command = [arg.replace("/app/var/beat", str(tmp_path)) for arg in services[name]["command"]]
    # Compose turns $$ into $ before the shell sees it; a shorter wait per try keeps this quick.
    check = services[name]["healthcheck"]["test"][1].replace("$$", "$")
    check = check.replace("--timeout 10", "--timeout 2")
    log = (tmp_path / f"{name}.log").open("w")
    process = subprocess.Popen(  # noqa: S603 (compose's own command)
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        result = wait_for_success(check, env, timeout=40)
        assert result.returncode == 0, (
            result.stdout + result.stderr + (tmp_path / f"{name}.log").read_text()[-3000:]
        )
        assert "pong" in result.stdout
        if name == "worker":
            assert (
                "worker: not configured yet: EMAIL_URL is not set"
                in (tmp_path / "worker.log").read_text()
            )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)
