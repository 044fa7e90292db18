"""Source pages of aggregated listings: fetch them politely, read their JobPosting, hash the job.

- ``fetch`` is the only way a worker reaches another site: httpx with connect and read timeouts,
  a cap on the whole fetch, a redirect limit, a size cap, a clear user agent, conditional requests
  (ETag, Last-Modified), and per-host limits on requests at once and per minute.
- Nothing fetched from outside reaches inside: every connection, the first and each redirect
  hop's, resolves its host name once, refuses loopback, private, link-local and other inside
  addresses, ports other than 80 and 443 (``SOURCE_ALLOWED_NETWORKS``/``_PORTS`` excepted) and
  the board itself (``SITE_URL``), and connects to the very address it checked, so a name that
  re-resolves (DNS rebinding) cannot slip through.
- ``read_page`` finds the page's schema.org ``JobPosting`` JSON-LD and reduces it to ``JobFacts``:
  the facts we show, in our own vocabulary.
- ``content_hash`` hashes the job, not the page: ads, "rendered at" footers and tracking scripts
  change on every request, the job does not.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
import secrets
import socket
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from urllib.parse import urlsplit

import httpcore
import httpx
import lxml.html
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django_countries import countries
from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from w3lib.url import canonicalize_url, url_query_cleaner

from .text import sanitize_html, without_control_characters

logger = logging.getLogger(__name__)

# Query parameters that only say who sent the visitor: the same job page without them.
TRACKING_PARAMS = ("gclid", "fbclid", "mc_cid", "mc_eid", "ref", "source")


class SourceUnavailable(Exception):
    """No verdict: a network error, a timeout, a 5xx, or an answer we cannot read. Retry later."""


class SourceRefused(SourceUnavailable):
    """The address is inside (loopback, private, link-local, ...) or on a port we do not fetch."""


class HostBusy(Exception):
    """This host already has as many requests as we allow; try again after ``retry_after``."""

    def __init__(self, host: str, retry_after: float) -> None:
        super().__init__(f"{host} is at its request limit; retry in {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Fetched:
    status: int
    url: str  # after redirects
    redirected: bool
    body: bytes = b""
    etag: str = ""
    last_modified: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304


# --- URLs -----------------------------------------------------------------------------------


def canonical_url(url: str) -> str:
    """The one spelling of a source page: lower-case host, sorted query, no fragment or trackers."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"Not a web address: {url[:200]!r}")
    try:  # what the fetch will make of it: httpx refuses hosts like 0177.0.0.1 or 256.1.1.1
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"Not a web address: {url[:200]!r} ({exc})") from exc
    query_keys = [kv.split("=", 1)[0] for kv in parts.query.split("&") if kv]
    unwanted = [k for k in query_keys if k.startswith("utm_") or k in TRACKING_PARAMS]
    if unwanted:
        url = url_query_cleaner(url, unwanted, remove=True, keep_fragments=True)
    return canonicalize_url(url)


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


# --- Politeness -----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _rate_limiter() -> MovingWindowRateLimiter:
    storage = storage_from_string(settings.REDIS_URL or "memory://")
    return MovingWindowRateLimiter(storage)


class host_slot:
    """One of ``SOURCE_HOST_CONCURRENCY`` slots for a host, and one request of its per-minute limit.

    Slots are cache keys taken with ``add`` (atomic SET NX on Redis) and expiring on their own, so
    a worker killed mid-fetch frees its slot within the fetch's time cap.
    """

    def __init__(self, host: str) -> None:
        self.host = host
        self.key = ""

    def __enter__(self) -> host_slot:
        hold = int(settings.SOURCE_TOTAL_TIMEOUT) + 5
        for slot in range(settings.SOURCE_HOST_CONCURRENCY):
            key = f"source-slot:{self.host}:{slot}"
            if cache.add(key, secrets.token_hex(4), timeout=hold):
                self.key = key
                break
        else:
            raise HostBusy(self.host, retry_after=settings.SOURCE_TOTAL_TIMEOUT)
        per_minute = RateLimitItemPerMinute(settings.SOURCE_HOST_PER_MINUTE)
        limiter = _rate_limiter()
        if not limiter.hit(per_minute, "source-host", self.host):
            self.__exit__()
            reset_at = limiter.get_window_stats(per_minute, "source-host", self.host).reset_time
            raise HostBusy(self.host, retry_after=max(1.0, reset_at - time.time()))
        return self

    def __exit__(self, *exc_info) -> None:
        if self.key:
            cache.delete(self.key)
            self.key = ""


# --- Inside addresses -----------------------------------------------------------------------

WEB_PORTS = (80, 443)
# Not public, though Python's flags miss them (3.11): shared address space (carrier-grade NAT).
SHARED_ADDRESSES = ipaddress.ip_network("100.64.0.0/10")
# IPv6 prefixes that carry an IPv4 address a router may deliver to: judged by that address.
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client behind the Teredo server
    if any(address in prefix for prefix in NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def inside_kind(address: IPAddress) -> str:
    """What kind of inside address this is ("loopback", "private", ...); "" for a public one."""
    if address.version == 6:
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            kind = inside_kind(embedded)
            # A mapped or NAT64 address is its IPv4 address, whatever its own prefix's flags.
            if kind or address.ipv4_mapped or any(address in prefix for prefix in NAT64):
                return kind
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("shared (carrier-grade NAT)", address.version == 4 and address in SHARED_ADDRESSES),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    )
    for kind, applies in checks:
        if applies:
            return kind
    return "" if address.is_global else "non-public"


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in settings.SOURCE_ALLOWED_NETWORKS]


def port_refusal(port: int) -> str:
    """Why we do not connect to this port; "" when we do."""
    if port in WEB_PORTS or port in settings.SOURCE_ALLOWED_PORTS:
        return ""
    return f"port {port} is not a web port (80, 443; others need SOURCE_ALLOWED_PORTS)"


def board_refusal(host: str, port: int) -> str:
    """A source page on this board (SITE_URL) is not a source: "" for any other host."""
    site = urlsplit(settings.SITE_URL)
    site_port = site.port or (443 if site.scheme == "https" else 80)
    # "jobs.example.com." (a fully qualified name) is the same host as "jobs.example.com".
    same_host = host.lower().strip("[]").rstrip(".") == (site.hostname or "").lower().rstrip(".")
    if same_host and port == site_port:
        return "it is this board (SITE_URL)"
    return ""


def address_refusal(address: IPAddress) -> str:
    """Why we do not connect to this address; "" when we do."""
    if any(address in network for network in _allowed_networks()):
        return ""
    kind = inside_kind(address)
    return f"{address} is a {kind} address" if kind else ""


class OutsideOnlyBackend(httpcore.SyncBackend):
    """httpcore's sockets, to checked addresses only: every connection httpx opens (the first
    request's and each redirect hop's) resolves its host once, drops the addresses we refuse and
    connects to one it checked. TLS still names the host (httpcore passes it as SNI), and so does
    the Host header."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options=None,
    ) -> httpcore.NetworkStream:
        if why := board_refusal(host, port) or port_refusal(port):
            raise SourceRefused(f"refused {host}:{port}: {why}")
        addresses = _resolve(host, port)
        allowed = [address for address in addresses if not address_refusal(address)]
        if not allowed:
            raise SourceRefused(f"refused {host}:{port}: {address_refusal(addresses[0])}")
        error: Exception | None = None
        for address in allowed:  # in the resolver's order, as socket.create_connection tries them
            try:
                return super().connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of a host (an address stays itself), in the resolver's order, once each."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise httpcore.ConnectError(f"cannot resolve {host}: no address")
    return addresses


@lru_cache(maxsize=1)
def _ssl_context():
    """One per process (building one reads the CA bundle: ~80 ms); connections may share it."""
    return httpx.create_ssl_context()


class OutsideOnlyTransport(httpx.HTTPTransport):
    """httpx's transport on ``OutsideOnlyBackend``. httpx takes no network backend, and its
    ``__init__`` only builds the pool (and an SSL context), so this builds the same pool on ours
    instead. No proxy: one would connect for us, to addresses we never checked."""

    def __init__(self) -> None:  # not HTTPTransport's: its pool would be thrown away
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=100,  # httpx's default limits
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=OutsideOnlyBackend(),
        )


# --- Fetching -------------------------------------------------------------------------------


def new_client() -> httpx.Client:
    """One client per batch: connections to a host are reused between its listings."""
    return httpx.Client(
        transport=OutsideOnlyTransport(),
        timeout=httpx.Timeout(
            connect=settings.SOURCE_CONNECT_TIMEOUT,
            read=settings.SOURCE_READ_TIMEOUT,
            write=settings.SOURCE_READ_TIMEOUT,
            pool=settings.SOURCE_CONNECT_TIMEOUT,
        ),
        follow_redirects=True,
        max_redirects=settings.SOURCE_MAX_REDIRECTS,
        headers={
            "User-Agent": settings.SOURCE_USER_AGENT,
            "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
        },
    )


def fetch(
    url: str, *, etag: str = "", last_modified: str = "", client: httpx.Client | None = None
) -> Fetched:
    """GET a source page within our limits; raises SourceUnavailable or HostBusy."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    own_client = client is None
    client = client or new_client()
    started = time.monotonic()
    try:
        with host_slot(host_of(url)), client.stream("GET", url, headers=headers) as response:
            if response.status_code >= 500 or response.status_code in (408, 429):
                raise SourceUnavailable(f"the source answered {response.status_code}")
            body = _read_capped(response, started) if response.status_code == 200 else b""
            return Fetched(
                status=response.status_code,
                url=str(response.url),
                redirected=bool(response.history),
                body=body,
                etag=response.headers.get("ETag", "")[:200],
                last_modified=response.headers.get("Last-Modified", "")[:100],
            )
    except SourceRefused as exc:
        logger.warning("source fetch refused: %s: %s", url[:200], exc)
        raise
    except httpx.TooManyRedirects as exc:
        raise SourceUnavailable(f"more than {settings.SOURCE_MAX_REDIRECTS} redirects") from exc
    except httpx.TimeoutException as exc:
        raise SourceUnavailable(f"timed out ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise SourceUnavailable(f"network error ({type(exc).__name__}: {exc})"[:200]) from exc
    finally:
        if own_client:
            client.close()


def _read_capped(response: httpx.Response, started: float) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > settings.SOURCE_MAX_BYTES:
        raise SourceUnavailable(f"the page is larger than {settings.SOURCE_MAX_BYTES} bytes")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > settings.SOURCE_MAX_BYTES:
            raise SourceUnavailable(f"the page is larger than {settings.SOURCE_MAX_BYTES} bytes")
        if time.monotonic() - started > settings.SOURCE_TOTAL_TIMEOUT:
            raise SourceUnavailable(f"the page took over {settings.SOURCE_TOTAL_TIMEOUT:.0f} s")
        chunks.append(chunk)
    return b"".join(chunks)


# --- Reading the page -----------------------------------------------------------------------

# Google's employmentType values, in our vocabulary.
EMPLOYMENT_TYPES = {
    "FULL_TIME": "full_time", "PART_TIME": "part_time", "CONTRACTOR": "contract",
    "CONTRACT": "contract", "TEMPORARY": "temporary", "PER_DIEM": "temporary",
    "INTERN": "internship", "INTERNSHIP": "internship", "VOLUNTEER": "volunteer",
}  # fmt: skip
SALARY_UNITS = {"HOUR": "hour", "DAY": "day", "WEEK": "week", "MONTH": "month", "YEAR": "year"}
# Seniority is not a schema.org property: read from the title, most specific word first.
SENIORITY_WORDS = (
    ("intern", r"\b(intern|internship|trainee|praktikant)\b"),
    ("executive", r"\b(chief|cto|ceo|cfo|vp|vice president|director|head of)\b"),
    ("lead", r"\b(lead|principal|staff|manager)\b"),
    ("senior", r"\b(senior|sr\.?)\b"),
    ("junior", r"\b(junior|jr\.?|graduate|entry)\b"),
)
PRACTICE_WORDS = (
    ("intellectual_property", r"\b(patent|trademark|intellectual property|ip counsel)\b"),
    ("litigation", r"\b(litigat\w*|trial|dispute)\b"),
    ("compliance", r"\b(complian\w*|regulatory|aml|kyc)\b"),
    ("corporate_law", r"\b(lawyer|attorney|counsel|legal|paralegal|solicitor|advokat)\b"),
    ("data", r"\b(data|analyst|analytics|machine learning|ml)\b"),
    ("design", r"\b(design\w*|ux|ui)\b"),
    ("product", r"\b(product)\b"),
    ("engineering", r"\b(engineer\w*|developer|programmer|devops|sre|software)\b"),
    ("marketing", r"\b(marketing|seo|content|brand)\b"),
    ("sales", r"\b(sales|account executive|business development)\b"),
    ("customer_support", r"\b(support|customer success|help ?desk)\b"),
    ("finance", r"\b(financ\w*|accountant|accounting|controller|bookkeep\w*)\b"),
    ("people", r"\b(hr|recruit\w*|talent|people)\b"),
    ("healthcare", r"\b(nurse|doctor|physician|clinical|pharmac\w*)\b"),
    ("education", r"\b(teacher|tutor|lecturer|professor)\b"),
)


@dataclass
class JobFacts:
    """What a source page says about its job, in our vocabulary (only what it says)."""

    title: str
    description_html: str
    employment_type: str = ""
    workplace: str = ""
    city: str = ""
    region: str = ""
    country: str = ""
    salary_min: int | None = None
    salary_max: int | None = None
    salary_currency: str = ""
    salary_period: str = ""
    deadline: datetime | None = None
    posted_at: datetime | None = None
    company_name: str = ""
    company_website: str = ""
    seniority: str = ""
    practice_area: str = ""
    problems: list[str] = field(default_factory=list)

    def hash(self) -> str:
        facts = asdict(self)
        facts.pop("problems")
        facts["description_html"] = _normalize_text(self.description_html)
        return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Page:
    job: JobFacts | None  # None: the page carries no JobPosting
    content_hash: str  # "ld:<sha256>" of the JobPosting, or "tx:<sha256>" of the page's main text


def read_page(body: bytes) -> Page:
    try:
        doc = lxml.html.document_fromstring(body)
    except (ValueError, lxml.etree.ParserError):
        return Page(job=None, content_hash="tx:" + hashlib.sha256(b"").hexdigest())
    posting = next(iter(_job_postings(doc)), None)
    if posting is not None:
        job = job_facts(posting)
        if job is not None:
            return Page(job=job, content_hash="ld:" + job.hash())
    return Page(job=None, content_hash="tx:" + _main_text_hash(doc))


def _job_postings(doc) -> list[dict]:
    found: list[dict] = []
    for script in doc.xpath('//script[@type="application/ld+json"]'):
        text = (script.text or "").strip()
        text = re.sub(r"^\s*(<!--|<!\[CDATA\[)|(-->|\]\]>)\s*$", "", text)
        try:
            data = json.loads(text)
        except ValueError:
            continue
        stack = [data]
        while stack:
            item = stack.pop(0)
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                kinds = item.get("@type")
                kinds = kinds if isinstance(kinds, list) else [kinds]
                if "JobPosting" in kinds:
                    found.append(item)
                elif "@graph" in item:
                    stack.extend(item["@graph"] if isinstance(item["@graph"], list) else [])
    return found


# What is not the job on a page without JSON-LD: navigation, ads, forms, scripts, timestamps.
_NOISE = "|".join(
    f".//{path}"
    for path in (
        "script", "style", "noscript", "template", "iframe", "nav", "header", "footer", "aside",
        "form", "time", "*[@role='banner' or @role='navigation' or @role='complementary']",
        "*[contains(concat(' ', normalize-space(@class), ' '), ' ad ')]",
        "*[contains(@class, 'advert') or contains(@id, 'advert') or contains(@class, 'cookie')]",
    )
)  # fmt: skip


def _main_text_hash(doc) -> str:
    mains = doc.xpath("//main|//*[@role='main']|//article")
    main = mains[0] if mains else doc
    for noise in main.xpath(_NOISE):
        noise.drop_tree()
    return hashlib.sha256(_normalize_text(main.text_content()).encode()).hexdigest()


def _normalize_text(text: str) -> str:
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(text.split()).casefold()


def _text(value) -> str:
    if isinstance(value, dict):
        value = value.get("name") or value.get("@id") or ""
    if isinstance(value, list):
        value = value[0] if value else ""
    return " ".join(without_control_characters(str(value or "")).split())


def job_facts(posting: dict) -> JobFacts | None:
    """Our facts from one JobPosting; None when it has no title."""
    title = _text(posting.get("title") or posting.get("name"))[:200]
    if not title:
        return None
    job = JobFacts(
        title=title, description_html=sanitize_html(str(posting.get("description") or ""))
    )
    kinds = posting.get("employmentType") or []
    kinds = [kinds] if isinstance(kinds, str) else kinds
    mapped = [
        EMPLOYMENT_TYPES.get(str(k).upper().replace("-", "_").replace(" ", "_")) for k in kinds
    ]
    job.employment_type = next((m for m in mapped if m), "")
    _read_place(job, posting)
    _read_salary(job, posting.get("baseSalary"))
    job.deadline = _read_datetime(posting.get("validThrough"), end_of_day=True)
    job.posted_at = _read_datetime(posting.get("datePosted"))
    org = posting.get("hiringOrganization") or {}
    job.company_name = _text(org)[:200]
    if isinstance(org, dict):
        same_as = org.get("sameAs") or org.get("url") or ""
        same_as = same_as[0] if isinstance(same_as, list) and same_as else same_as
        if isinstance(same_as, str) and same_as.startswith(("http://", "https://")):
            job.company_website = same_as[:200]
    folded = title.casefold()
    job.seniority = next((s for s, words in SENIORITY_WORDS if re.search(words, folded)), "mid")
    category = " ".join(_text(posting.get(k)) for k in ("occupationalCategory", "industry"))
    job.practice_area = next(
        (a for a, words in PRACTICE_WORDS if re.search(words, f"{folded} {category.casefold()}")),
        "operations",
    )
    return job


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _country_code(value) -> str:
    name = _text(value).strip()
    if not name:
        return ""
    if len(name) == 2 and countries.name(name.upper()):
        return name.upper()
    if len(name) == 3 and countries.alpha2(name.upper()):
        return countries.alpha2(name.upper())
    from .filters import country_codes  # the same names and aliases the place filter knows

    codes = country_codes(name)
    return codes[0] if len(codes) == 1 else ""


def _read_place(job: JobFacts, posting: dict) -> None:
    for location in _as_list(posting.get("jobLocation")):
        address = location.get("address") if isinstance(location, dict) else None
        if isinstance(address, dict):
            job.city = _text(address.get("addressLocality"))[:100]
            job.region = _text(address.get("addressRegion"))[:100]
            job.country = _country_code(address.get("addressCountry"))
            if job.country:
                break
    location_types = [str(t).upper() for t in _as_list(posting.get("jobLocationType"))]
    if "TELECOMMUTE" in location_types:
        job.workplace = "hybrid" if job.city else "remote"
        if not job.country:
            for requirement in _as_list(posting.get("applicantLocationRequirements")):
                job.country = _country_code(requirement)
                if job.country:
                    break
    elif job.city:
        job.workplace = "onsite"
    if not job.country:
        job.problems.append("no country the board knows")


def _whole(value) -> int | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or number < 0 or number > 100_000_000:
        return None
    return int(number)


def _read_salary(job: JobFacts, salary) -> None:
    if not isinstance(salary, dict):
        return
    value = salary.get("value")
    value = value if isinstance(value, dict) else {"value": value}
    low = _whole(value.get("minValue", value.get("value")))
    high = _whole(value.get("maxValue", value.get("value")))
    unit = SALARY_UNITS.get(str(value.get("unitText") or salary.get("unitText") or "").upper(), "")
    currency = str(salary.get("currency") or "").strip().upper()
    if (low is None and high is None) or not unit or not re.fullmatch(r"[A-Z]{3}", currency):
        return
    if low is not None and high is not None and low > high:
        low, high = high, low
    job.salary_min, job.salary_max = low, high
    job.salary_currency, job.salary_period = currency, unit


def _read_datetime(value, *, end_of_day: bool = False) -> datetime | None:
    text = _text(value)
    if not text:
        return None
    moment = parse_datetime(text) if "T" in text else None
    if moment is None:
        try:
            day = parse_date(text[:10])
        except ValueError:
            day = None
        if day is None:
            return None
        moment = datetime.combine(day, dt_time(23, 59) if end_of_day else dt_time(0, 0))
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_fixed_timezone(0))
    return moment


def retry_delay(failures: int, *, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential backoff with jitter: between half and all of base * 2**failures, capped."""
    ceiling = min(cap.total_seconds(), base.total_seconds() * 2 ** min(failures, 16))
    return timedelta(seconds=ceiling / 2 + secrets.randbelow(int(ceiling / 2) + 1))
