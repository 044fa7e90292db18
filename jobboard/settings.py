"""Settings for the job board, read from the environment.

With nothing set this is the *embedded default*: an SQLite file under ``var/``, Celery tasks run
eagerly in the web process and a local-memory cache, so the site runs on a fresh machine with
nothing else installed. ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and Redis, the
production shape (see ``docker-compose.yml``).
"""

import ipaddress
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
import jinja2
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()

DATABASE_URL = env.str("DATABASE_URL", default="")
REDIS_URL = env.str("REDIS_URL", default="")
EMBEDDED = not DATABASE_URL

# --- Core -----------------------------------------------------------------------------------

# The embedded default is a developer's machine, so it debugs unless told otherwise; anything with
# a real database is production-shaped and must opt in to DEBUG.
DEBUG = env.bool("DEBUG", default=EMBEDDED)

_DEV_SECRET_KEY = "django-insecure-embedded-default-only-never-use-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Production settings (DEBUG off) refuse to start without a "
            "real secret: set SECRET_KEY to 50+ random characters."
        )
    SECRET_KEY = _DEV_SECRET_KEY
elif not DEBUG and (
    SECRET_KEY.startswith("django-insecure") or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5
):
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for production: use 50+ random characters "
        '(python -c "import secrets; print(secrets.token_urlsafe(50))").'
    )

SITE_NAME = env.str("SITE_NAME", default="Jobboard")
# The site's own address, for links in emails sent with no request at hand (tasks, safety net).
# docker-compose.yml requires it; served over TLS when it starts with https://.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
_site_host = urlsplit(SITE_URL).hostname or ""
SITE_IS_HTTPS = SITE_URL.startswith("https://")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[]) or ["localhost", "127.0.0.1", "[::1]"]
# The site's own host is always allowed: a first run on a real hostname needs SITE_URL alone.
if _site_host and f"[{_site_host}]" not in ALLOWED_HOSTS and _site_host not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append(f"[{_site_host}]" if ":" in _site_host else _site_host)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.sitemaps",
    "django.contrib.postgres",
    "django_filters",
    "django_countries",
    "axes",
    "accounts",
    "postings",
    "reporting",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Ahead of the kept pages, so that a page served from Redis carries these headers too.
    "jobboard.security_headers.CSPMiddleware",  # django-csp's, the policy built once
    "django_permissions_policy.PermissionsPolicyMiddleware",
    # Kept pages for anonymous visitors, before the session and the rest (postings/pagecache.py).
    "postings.pagecache.KeptPageMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "jobboard.urls"
WSGI_APPLICATION = "jobboard.wsgi.application"

# The site's pages and emails are Jinja2 (jobboard/jinja2.py says why); Django's own templates
# (the admin, form widgets) stay with Django's engine, found in the apps.
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {
            "environment": "jobboard.jinja2.environment",
            "context_processors": [
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "jobboard.context_processors.site",
            ],
            # HTML is escaped; the plain-text emails (.txt) are not.
            "autoescape": jinja2.select_autoescape(["html"], default_for_string=True),
            # Compiled once per process; DEBUG looks for edits.
            "auto_reload": DEBUG,
        },
    },
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data -----------------------------------------------------------------------------------

if EMBEDDED:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "jobboard.sqlite3",
            "OPTIONS": {
                # WAL and IMMEDIATE transactions let a few threads write without "database is
                # locked" errors; the embedded default serves one process with threads.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
else:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    # A new PostgreSQL connection costs ~4 ms a request; keep them open between requests.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # No JIT: compiling costs 50 ms to seconds on the few big statements (the facet snapshot)
    # and saves nothing on the short ones a page runs. PostgreSQL only: other backends refuse
    # an "options" argument (DATABASE_URL=sqlite:///... is a documented form).
    if "postgresql" in DATABASES["default"]["ENGINE"]:
        DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# Seconds to wait for Redis (connecting, or for an answer; it answers in well under a
# millisecond): a Redis that hangs costs a page this long per call, never a worker's whole
# timeout. Pages render without it (counts live, nothing kept).
REDIS_TIMEOUT = env.float("REDIS_TIMEOUT", default=0.5)
# After a call to Redis times out, each process leaves that Redis alone this many seconds (calls
# fail at once, as with Redis down), then asks again: one wait per pause, not one per call.
REDIS_BACKOFF_SECONDS = env.float("REDIS_BACKOFF_SECONDS", default=10.0)

if REDIS_URL:
    _redis_cache = {
        "BACKEND": "jobboard.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="jobboard"),
        "OPTIONS": {"socket_timeout": REDIS_TIMEOUT, "socket_connect_timeout": REDIS_TIMEOUT},
    }
    CACHES = {
        "default": _redis_cache,
        "counters": _redis_cache,
        # While Redis is away, views are counted straight into the database and their "already
        # counted today" marks kept here, in each process (``postings/counters.py``): bounded, so
        # a long outage costs some memory, never all of it.
        "counters_local": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "counters-while-redis-is-away",
            "OPTIONS": {"MAX_ENTRIES": 50_000, "CULL_FREQUENCY": 10},
        },
    }
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        # "Already counted today" marks: far more of them than the default cache's 300 entries,
        # or old marks are evicted and reloads count again.
        "counters": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "counters",
            "OPTIONS": {"MAX_ENTRIES": 1_000_000, "CULL_FREQUENCY": 10},
        },
    }

# Prefix for the raw Redis keys the view counter keeps (the cache has its own prefix).
REDIS_KEY_PREFIX = env.str("REDIS_KEY_PREFIX", default="jobboard")

# --- Celery ---------------------------------------------------------------------------------

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# A killed worker's task goes back on the queue instead of being lost.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=90)
# A message a worker took and never acknowledged (the whole worker was killed) is handed out
# again after this long. It must exceed the longest task and the longest countdown we use.
# Workers look for such messages every CELERY_RESTORE_INTERVAL seconds, at every
# CELERY_RESTORE_THROTTLE-th look (kombu's defaults: 10 and 10).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900),
    "unacked_restore_interval": env.int("CELERY_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": env.int("CELERY_RESTORE_THROTTLE", default=10),
}
# A queue of its own per deployment, so two boards (or a test run) can share one Redis.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="jobboard")
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TIMEZONE = "UTC"

VIEW_COUNT_FLUSH_INTERVAL = timedelta(seconds=env.int("VIEW_COUNT_FLUSH_SECONDS", default=60))
CELERY_BEAT_SCHEDULE = {
    "flush-view-counts": {
        "task": "postings.tasks.flush_view_counts",
        "schedule": VIEW_COUNT_FLUSH_INTERVAL.total_seconds(),
    },
    # Often enough to send within minutes once an hour has passed; the task keeps to one an hour.
    "moderator-digest": {"task": "reporting.tasks.send_moderator_digest", "schedule": 600.0},
}

# --- Re-checking listings (postings/freshness.py, postings/sources.py) ----------------------

# Every open listing is checked at least once per interval, the least recently checked first.
RECHECK_INTERVAL = timedelta(minutes=env.int("RECHECK_INTERVAL_MINUTES", default=60))
RECHECK_TICK = timedelta(seconds=env.int("RECHECK_TICK_SECONDS", default=60))
RECHECK_BATCH_SIZE = env.int("RECHECK_BATCH_SIZE", default=50)
# At most this many listings queued per tick, and none while the queue is already this long.
RECHECK_MAX_PER_TICK = env.int("RECHECK_MAX_PER_TICK", default=20_000)
RECHECK_MAX_QUEUE = env.int("RECHECK_MAX_QUEUE", default=2_000)
# Source pages fetched at once by one batch (threads; each holds its listing's row lock).
RECHECK_FETCH_THREADS = env.int("RECHECK_FETCH_THREADS", default=8)
# Failed fetches in a row before a moderator is asked to look (the listing stays as it is).
RECHECK_MAX_FAILURES = env.int("RECHECK_MAX_FAILURES", default=5)
# How soon a "closed" report re-checks its listing, and how often one listing may be forced.
RECHECK_ON_REPORT_COOLDOWN = timedelta(
    minutes=env.int("RECHECK_ON_REPORT_COOLDOWN_MINUTES", default=10)
)

SOURCE_CONNECT_TIMEOUT = env.float("SOURCE_CONNECT_TIMEOUT", default=5.0)
SOURCE_READ_TIMEOUT = env.float("SOURCE_READ_TIMEOUT", default=10.0)
# The whole fetch, however slowly a server trickles its bytes.
SOURCE_TOTAL_TIMEOUT = env.float("SOURCE_TOTAL_TIMEOUT", default=20.0)
SOURCE_MAX_REDIRECTS = env.int("SOURCE_MAX_REDIRECTS", default=5)
SOURCE_MAX_BYTES = env.int("SOURCE_MAX_BYTES", default=2_000_000)
SOURCE_USER_AGENT = env.str(
    "SOURCE_USER_AGENT",
    default=f"JobboardBot/0.1 (+{SITE_URL}/; re-checks listings it links to)",
)
# Per source host: requests at once, and requests per minute.
SOURCE_HOST_CONCURRENCY = env.int("SOURCE_HOST_CONCURRENCY", default=2)
SOURCE_HOST_PER_MINUTE = env.int("SOURCE_HOST_PER_MINUTE", default=30)
# Source pages come from public addresses on ports 80 and 443 only: loopback, private, link-local
# and other inside addresses are refused at every redirect hop (postings/sources.py). An operator
# who aggregates from an intranet on purpose names its networks (CIDRs) and extra ports here.
SOURCE_ALLOWED_NETWORKS = env.list("SOURCE_ALLOWED_NETWORKS", default=[])
SOURCE_ALLOWED_PORTS = env.list("SOURCE_ALLOWED_PORTS", cast=int, default=[])
for _network in SOURCE_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network)
    except ValueError as exc:
        raise ImproperlyConfigured(f"SOURCE_ALLOWED_NETWORKS: {exc}") from exc

# Employers hear this long before a listing's deadline, once.
DEADLINE_REMINDER_BEFORE = timedelta(days=env.int("DEADLINE_REMINDER_DAYS", default=3))

CELERY_BEAT_SCHEDULE |= {
    "recheck-listings": {
        "task": "postings.tasks.schedule_rechecks",
        "schedule": RECHECK_TICK.total_seconds(),
    },
    "deadline-reminders": {"task": "postings.tasks.send_deadline_reminders", "schedule": 600.0},
}

# --- Saved searches and email alerts (alerts/) ----------------------------------------------

# Beat looks for due alerts this often; each search goes daily or weekly, as its subscriber chose.
ALERTS_TICK = timedelta(seconds=env.int("ALERTS_TICK_SECONDS", default=600))
ALERTS_BATCH_SIZE = env.int("ALERTS_BATCH_SIZE", default=50)
ALERTS_MAX_PER_RUN = env.int("ALERTS_MAX_PER_RUN", default=20_000)
# A queued batch that never ran (its worker died) gives its searches back after this.
ALERTS_QUEUED_LEASE = timedelta(minutes=env.int("ALERTS_QUEUED_LEASE_MINUTES", default=30))
# Listings per alert email; the email links to the rest.
ALERTS_MAX_LISTINGS = env.int("ALERTS_MAX_LISTINGS", default=20)
# An alert also looks this far before the previous one, for listings committed just after it.
ALERTS_GRACE = timedelta(hours=env.int("ALERTS_GRACE_HOURS", default=24))
ALERTS_CONFIRM_MAX_AGE = timedelta(days=env.int("ALERTS_CONFIRM_DAYS", default=3))
ALERTS_CONFIRMATIONS_PER_DAY = env.int("ALERTS_CONFIRMATIONS_PER_DAY", default=3)
ALERTS_MAX_PER_EMAIL = env.int("ALERTS_MAX_PER_EMAIL", default=20)

CELERY_BEAT_SCHEDULE |= {
    "email-alerts": {"task": "alerts.tasks.send_alerts", "schedule": ALERTS_TICK.total_seconds()},
    "delete-stale-searches": {"task": "alerts.tasks.delete_stale_searches", "schedule": 3600.0},
}

# Anonymous visitors' list and listing pages are kept rendered this long at most, so the counts
# and times on them are at most a minute old; served only while every listing on them is unchanged
# (postings/pagecache.py, postings/changes.py). 0 turns it off.
PAGE_CACHE_SECONDS = env.int("PAGE_CACHE_SECONDS", default=60)
# How old the list's counts and the filter panel's numbers may be (postings/facets.py).
FACET_CACHE_SECONDS = env.int("FACET_CACHE_SECONDS", default=60)
CELERY_BEAT_SCHEDULE |= {
    # Ahead of that age (counting a million listings takes a few seconds), so pages rarely find
    # the snapshot stale and have to count it themselves.
    "refresh-facet-counts": {
        "task": "postings.tasks.refresh_facet_counts",
        "schedule": max(FACET_CACHE_SECONDS * 0.75, 1.0),
    },
}

# --- Domain knobs ---------------------------------------------------------------------------

POSTINGS_PER_PAGE = env.int("POSTINGS_PER_PAGE", default=20)
# Result counts above this are shown as "1,000+": an exact COUNT(*) over a million rows is slow.
POSTINGS_COUNT_CAP = env.int("POSTINGS_COUNT_CAP", default=1000)
# Keyword searches count less far ("500+ jobs"): each match is checked against the words.
POSTINGS_SEARCH_COUNT_CAP = env.int("POSTINGS_SEARCH_COUNT_CAP", default=500)
# Numbered pages are opened by OFFSET up to here; beyond, "Next" carries a keyset cursor.
POSTINGS_MAX_OFFSET_PAGE = env.int("POSTINGS_MAX_OFFSET_PAGE", default=25)
# The safety net hides a listing reported as fake or unsafe by this many distinct visitors in 24 h.
SAFETY_NET_REPORTS = env.int("SAFETY_NET_REPORTS", default=3)
# Views (and apply clicks) counted per listing and day from one address, whatever its browsers.
COUNTS_PER_ADDRESS_PER_DAY = env.int("COUNTS_PER_ADDRESS_PER_DAY", default=3)
# Number of trusted reverse proxies in front of the app; 0 means trust REMOTE_ADDR only.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# --- Auth -----------------------------------------------------------------------------------

AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses logins from locked-out accounts and addresses.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "employer:dashboard"
LOGOUT_REDIRECT_URL = "postings:list"

# Log-in attempts: locked per account and, separately, per address after repeated failures.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_USERNAME_FORM_FIELD = "username"
# Emails are stored lower-cased, so "Ann@X.com" and "ann@x.com" count against one account.
AXES_USERNAME_CALLABLE = "accounts.lockout.username"
# The same notion of "the visitor's address" as the view counter, trusting only our proxies.
AXES_CLIENT_IP_CALLABLE = "postings.counters.client_ip"

# django-ratelimit keeps its counters in the default cache.
RATELIMIT_USE_CACHE = "default"

# Email verification and invitation links stay valid this long.
SIGNUP_LINK_MAX_AGE = timedelta(days=env.int("SIGNUP_LINK_DAYS", default=3))
INVITATION_MAX_AGE = timedelta(days=env.int("INVITATION_DAYS", default=7))
# Emails anyone can have us send to an address, per mailbox (jobboard/mailbox.py) and day, each
# kind counted on its own: sign-up emails (verification, "someone tried to sign up"), password
# resets and invitations; and confirmations of applications.
ACCOUNT_EMAILS_PER_DAY = env.int("ACCOUNT_EMAILS_PER_DAY", default=5)
APPLICATION_CONFIRMATIONS_PER_DAY = env.int("APPLICATION_CONFIRMATIONS_PER_DAY", default=10)

# CV uploads.
CV_MAX_BYTES = env.int("CV_MAX_BYTES", default=5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# The first parses uploads with Django's parser, keeping files whose names it would drop or choke
# on (``jobboard/uploads.py``); then Django's own, in memory or spooled to disk.
FILE_UPLOAD_HANDLERS = [
    "jobboard.uploads.NamingUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- I18n -----------------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media -----------------------------------------------------------------------

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# Files served at the site's root by WhiteNoise: /favicon.ico, which browsers and crawlers ask for
# whatever the page's <link rel="icon"> says.
WHITENOISE_ROOT = BASE_DIR / "public"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
PRIVATE_MEDIA_ROOT = Path(env.str("PRIVATE_MEDIA_ROOT", default=str(VAR_DIR / "private")))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # CVs: a storage with no URLs at all, so nothing in it can be linked to; served only by a
    # view that checks who asks.
    # Production can point PRIVATE_STORAGE_BACKEND at object storage with private ACLs.
    "private": {
        "BACKEND": env.str(
            "PRIVATE_STORAGE_BACKEND", default="postings.storage.PrivateFileSystemStorage"
        ),
        "OPTIONS": {"location": str(PRIVATE_MEDIA_ROOT)}
        if "FileSystemStorage" in env.str("PRIVATE_STORAGE_BACKEND", default="FileSystemStorage")
        else {},
    },
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_STORAGE",
            default="django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}

# --- Email ----------------------------------------------------------------------------------

# One variable for mail, e.g. smtp+tls://user:password@smtp.example.com:587 or consolemail://
_email = env.email_url("EMAIL_URL", default="consolemail://" if EMBEDDED else "smtp://localhost:25")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST", "localhost")
EMAIL_PORT = _email.get("EMAIL_PORT", 25)
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Jobboard <jobs@localhost>")

# --- Security -------------------------------------------------------------------------------

# Secure cookies only where the site is served over TLS: a browser never sends them back over
# plain HTTP, so a first run on http://host:8000 would fail every form (CSRF) and every log-in.
SECURE = not DEBUG and env.bool("SECURE_COOKIES", default=SITE_IS_HTTPS)
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Healthchecks ask over plain HTTP from inside (compose's web healthcheck, load balancers): a
# redirect to https:// there would mark a healthy web unhealthy, and nginx would never start.
SECURE_REDIRECT_EXEMPT = [r"^healthz/"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
)

# What a page may load and do. No inline script or style anywhere (kept pages are shared between
# visitors, so per-request nonces are out): scripts and styles are files from this site; the one
# exception is the 500 page's <style>, which must show without static files, allowed by its hash.
# Logos are served by this site too (accounts:company_logo). JSON-LD is data, not script.
ERROR_PAGE_STYLE_HASH = "'sha256-odGcnaDGw2DUfM818dfMcFcbzlYZ8T8JG0tQ758ShU8='"
_csp = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", ERROR_PAGE_STYLE_HASH],
        "img-src": ["'self'", "data:"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
        "report-uri": env.str("CSP_REPORT_URI", default="") or None,
    }
}
# Operators trying the policy on a live site: browsers report what it would block, block nothing.
CSP_REPORT_ONLY = env.bool("CSP_REPORT_ONLY", default=False)
if CSP_REPORT_ONLY:
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _csp
else:
    CONTENT_SECURITY_POLICY = _csp

# Browser features no page of ours uses are denied, to this site and anything it might embed.
# Sharing a listing copies its link and opens the device's share sheet: clipboard-write and
# web-share are allowed to this site by default, and naming web-share (or bluetooth) makes
# browsers without it log an error on every page.
PERMISSIONS_POLICY = {
    "accelerometer": [],
    "autoplay": [],
    "browsing-topics": [],
    "camera": [],
    "display-capture": [],
    "geolocation": [],
    "gyroscope": [],
    "hid": [],
    "idle-detection": [],
    "interest-cohort": [],  # FLoC, Topics' predecessor: Chromium still reads it
    "magnetometer": [],
    "microphone": [],
    "midi": [],
    "payment": [],
    "serial": [],
    "usb": [],
    "xr-spatial-tracking": [],
}

# --- Logging --------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Calls to a Redis paused after a timeout are not logged one by one (jobboard/redis_breaker).
    "filters": {
        "redis_paused": {"()": "jobboard.redis_breaker.QuietWhilePaused"},
        "refusal_on_one_line": {"()": "jobboard.logging_filters.RefusalOnOneLine"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redis_paused"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # A 403 is a refusal, not a fault: one line, no traceback.
        "django.request": {"filters": ["refusal_on_one_line"]},
        # Every re-check logs its verdict (postings.freshness); the client's own line is noise.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
