"""Source pages: canonical URLs, JobPosting facts, content hashes, polite fetching."""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest

from postings import sources
from tests.source_server import job_posting, json_ld_html

pytestmark = pytest.mark.usefixtures("quick_sources")


def page_of(job: dict, extra_html: str = "") -> sources.Page:
    return sources.read_page(json_ld_html(job, extra_html))


# --- Canonical URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "https://Jobs.Example.com/offer?id=7&lang=en",
        "https://jobs.example.com/offer?lang=en&id=7",
        "https://jobs.example.com/offer?id=7&lang=en#apply",
        "https://jobs.example.com/offer?id=7&utm_source=news&lang=en&utm_medium=mail",
        "https://jobs.example.com/offer?gclid=abc&id=7&lang=en&fbclid=x",
        "  https://jobs.example.com/offer?id=7&lang=en  ",
    ],
)
def test_every_spelling_of_a_source_page_has_one_canonical_url(spelling):
    assert sources.canonical_url(spelling) == "https://jobs.example.com/offer?id=7&lang=en"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "ftp://example.com/x",
        "javascript:alert(1)",
        "jobs/123",
        "http://0177.0.0.1/job",  # octal 127.0.0.1: httpx will not fetch it
        "http://256.1.1.1/job",
    ],
)
def test_only_web_addresses_have_a_canonical_url(bad):
    with pytest.raises(ValueError, match="Not a web address"):
        sources.canonical_url(bad)


# --- Reading JobPosting facts ---------------------------------------------------------------


def test_a_job_postings_facts_are_read_in_our_vocabulary():
    job = page_of(
        job_posting(
            title="Senior Patent Attorney",
            description=(
                '<p>Draft <b>claims</b>.</p><script>alert(1)</script><a href="javascript:x">x</a>'
            ),
            employmentType=["CONTRACTOR", "FULL_TIME"],
            validThrough="2099-03-31",
            datePosted="2026-11-02T09:30:00+01:00",
            hiringOrganization={
                "@type": "Organization",
                "name": "Acme",
                "sameAs": "https://acme.example",
            },
            jobLocation={
                "address": {
                    "addressLocality": "Munich",
                    "addressRegion": "Bavaria",
                    "addressCountry": "Germany",
                }
            },
            baseSalary={
                "@type": "MonetaryAmount",
                "currency": "eur",
                "value": {
                    "@type": "QuantitativeValue",
                    "minValue": 90000,
                    "maxValue": "120000.50",
                    "unitText": "YEAR",
                },
            },
        )
    ).job
    assert job.title == "Senior Patent Attorney"
    assert "<script" not in job.description_html and "javascript:" not in job.description_html
    assert "<b>claims</b>" in job.description_html
    assert job.employment_type == "contract"  # the first of several that we know
    assert (job.city, job.region, job.country, job.workplace) == (
        "Munich",
        "Bavaria",
        "DE",
        "onsite",
    )
    assert (job.salary_min, job.salary_max, job.salary_currency, job.salary_period) == (
        90000, 120000, "EUR", "year",
    )  # fmt: skip
    assert job.deadline == datetime(2099, 3, 31, 23, 59, tzinfo=UTC)
    assert job.posted_at == datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
    assert (job.company_name, job.company_website) == ("Acme", "https://acme.example")
    assert (job.seniority, job.practice_area) == ("senior", "intellectual_property")
    assert job.problems == []


def test_a_remote_role_takes_its_country_from_the_applicant_location_requirements():
    job = page_of(
        job_posting(
            jobLocation=None,
            jobLocationType="TELECOMMUTE",
            applicantLocationRequirements={"@type": "Country", "name": "USA"},
        )
    ).job
    assert (job.workplace, job.country, job.city) == ("remote", "US", "")


def test_a_telecommute_role_with_an_office_city_is_hybrid():
    job = page_of(job_posting(jobLocationType="TELECOMMUTE")).job
    assert (job.workplace, job.city, job.country) == ("hybrid", "Berlin", "DE")


def test_a_job_without_a_country_we_know_is_a_problem_to_report():
    job = page_of(job_posting(jobLocation={"address": {"addressLocality": "Atlantis"}})).job
    assert job.problems == ["no country the board knows"]


@pytest.mark.parametrize(
    ("salary", "expected"),
    [
        ({"currency": "USD", "value": {"value": 40, "unitText": "HOUR"}}, (40, 40, "USD", "hour")),
        (
            {"currency": "USD", "value": {"minValue": 9, "maxValue": 5, "unitText": "DAY"}},
            (5, 9, "USD", "day"),
        ),
        ({"currency": "USD", "value": {"minValue": 9}}, (None, None, "", "")),  # no unit
        ({"currency": "dollars", "value": {"value": 9, "unitText": "YEAR"}}, (None, None, "", "")),
        ({"currency": "USD", "value": {"value": "NaN", "unitText": "YEAR"}}, (None, None, "", "")),
        ({"currency": "USD", "value": {"value": -5, "unitText": "YEAR"}}, (None, None, "", "")),
        (
            {"currency": "USD", "value": {"value": "1e400", "unitText": "YEAR"}},
            (None, None, "", ""),
        ),
        ("lots", (None, None, "", "")),
    ],
)
def test_a_salary_is_read_only_when_it_is_whole_and_complete(salary, expected):
    job = page_of(job_posting(baseSalary=salary)).job
    assert (job.salary_min, job.salary_max, job.salary_currency, job.salary_period) == expected


def test_a_job_posting_is_found_in_a_graph_a_list_or_behind_cdata():
    posting = job_posting(title="Graph Job")
    for wrapped in (
        {"@context": "https://schema.org", "@graph": [{"@type": "WebPage"}, posting]},
        [{"@type": "Organization", "name": "X"}, posting],
    ):
        body = f'<script type="application/ld+json">{json.dumps(wrapped)}</script>'.encode()
        assert sources.read_page(body).job.title == "Graph Job"
    cdata = f'<script type="application/ld+json">//<![CDATA[\n{json.dumps(posting)}\n//]]></script>'
    body = cdata.replace("//<![CDATA[", "<![CDATA[").replace("//]]>", "]]>").encode()
    assert sources.read_page(body).job.title == "Graph Job"


@pytest.mark.parametrize(
    "body",
    [
        b'<script type="application/ld+json">{not json</script><main>Hello</main>',
        b'<script type="application/ld+json">{"@type": "JobPosting"}</script>',  # no title
        b'<script type="application/ld+json">{"@type": "Organization", "name": "X"}</script>',
        b"",
        b"\x00\xff\xfe garbage",
    ],
)
def test_a_page_without_a_usable_job_posting_has_no_job_but_still_a_hash(body):
    page = sources.read_page(body)
    assert page.job is None
    assert page.content_hash.startswith("tx:")


# --- What counts as a change ----------------------------------------------------------------


def test_ads_and_timestamps_do_not_change_the_hash_of_a_job():
    job = job_posting()
    first, second = page_of(job), page_of(job)  # each render has a new ad and a new timestamp
    assert json_ld_html(job) != json_ld_html(job)
    assert first.content_hash == second.content_hash
    assert first.content_hash.startswith("ld:")


@pytest.mark.parametrize(
    "change",
    [
        {"title": "Frontend Developer"},
        {"description": "<p>Something else entirely.</p>"},
        {"validThrough": "2099-06-30"},
        {"baseSalary": {"currency": "EUR", "value": {"value": 50000, "unitText": "YEAR"}}},
    ],
)
def test_a_change_to_the_job_changes_the_hash(change):
    assert page_of(job_posting()).content_hash != page_of(job_posting(**change)).content_hash


def test_whitespace_and_markup_in_a_description_are_not_a_change():
    a = page_of(job_posting(description="<p>Build  the\nshop.</p>"))
    b = page_of(job_posting(description="<p>Build the shop.</p>"))
    assert a.content_hash == b.content_hash


def test_a_page_without_json_ld_is_hashed_on_its_main_text_without_the_noise():
    def page(main: str, noise: int) -> bytes:
        return (
            f"<html><body><nav>Menu {noise}</nav><main><h1>Baker</h1><p>{main}</p>"
            f'<time datetime="x">{noise} minutes ago</time><div class="ad">Buy {noise}</div>'
            f"<script>var n={noise}</script></main><footer>{noise}</footer></body></html>"
        ).encode()

    assert sources.read_page(page("Bake bread.", 1)).content_hash == (
        sources.read_page(page("Bake  bread.", 2)).content_hash
    )
    assert sources.read_page(page("Bake bread.", 1)).content_hash != (
        sources.read_page(page("Bake cakes.", 1)).content_hash
    )


def test_retries_back_off_exponentially_with_jitter_up_to_a_cap():
    base, cap = timedelta(seconds=60), timedelta(hours=1)
    delays = {
        n: [sources.retry_delay(n, base=base, cap=cap) for _ in range(50)] for n in (1, 3, 20)
    }
    assert all(timedelta(seconds=60) <= d <= timedelta(seconds=120) for d in delays[1])
    assert all(timedelta(seconds=240) <= d <= timedelta(seconds=480) for d in delays[3])
    assert all(timedelta(minutes=30) <= d <= cap for d in delays[20])
    assert len(set(delays[3])) > 1  # jitter: not all at the same moment


# --- Fetching -------------------------------------------------------------------------------


def test_a_fetch_sends_our_user_agent_and_conditional_headers(source_server, settings):
    url = source_server.json_ld_page("/job", job_posting(), etag='"v1"')
    fetched = sources.fetch(url)
    assert (fetched.status, fetched.etag, fetched.redirected) == (200, '"v1"', False)
    again = sources.fetch(url, etag='"v1"', last_modified="Wed, 21 Oct 2026 07:28:00 GMT")
    assert again.not_modified and again.body == b""
    hit = source_server.requests("/job")[-1]
    assert hit.headers["User-Agent"] == settings.SOURCE_USER_AGENT
    assert hit.headers["If-None-Match"] == '"v1"'
    assert hit.headers["If-Modified-Since"] == "Wed, 21 Oct 2026 07:28:00 GMT"


def test_a_fetch_follows_a_few_redirects_and_says_where_it_landed(source_server):
    source_server.json_ld_page("/new", job_posting())
    url = source_server.redirect("/old", "/new")
    fetched = sources.fetch(url)
    assert fetched.redirected and fetched.url == source_server.url("/new")


def test_a_redirect_loop_is_no_verdict(source_server, settings):
    settings.SOURCE_MAX_REDIRECTS = 3
    source_server.redirect("/a", "/b")
    url = source_server.redirect("/b", "/a")
    with pytest.raises(sources.SourceUnavailable, match="more than 3 redirects"):
        sources.fetch(url)


@pytest.mark.parametrize("code", [500, 502, 503, 429, 408])
def test_a_server_error_or_throttling_is_no_verdict(source_server, code):
    url = source_server.status("/job", code)
    with pytest.raises(sources.SourceUnavailable, match=str(code)):
        sources.fetch(url)


@pytest.mark.parametrize("kind", ["hang", "trickle"])
def test_a_hanging_or_trickling_server_is_given_up_on_in_time(source_server, kind):
    source_server.json_ld_page("/job", job_posting(description="<p>" + "x" * 5000 + "</p>"))
    getattr(source_server, kind)("/job", 10)
    started = time.monotonic()
    with pytest.raises(sources.SourceUnavailable):
        sources.fetch(source_server.url("/job"))
    assert time.monotonic() - started < 5


def test_a_page_over_the_size_cap_is_not_read(source_server, settings):
    settings.SOURCE_MAX_BYTES = 10_000
    url = source_server.page("/big", "<p>" + "x" * 20_000 + "</p>")
    with pytest.raises(sources.SourceUnavailable, match="larger than 10000 bytes"):
        sources.fetch(url)


def test_nothing_listens_is_no_verdict(settings):
    settings.SOURCE_ALLOWED_NETWORKS, settings.SOURCE_ALLOWED_PORTS = ["127.0.0.1/32"], [9]
    with pytest.raises(sources.SourceUnavailable, match="network error"):
        sources.fetch("http://127.0.0.1:9/job")


def test_a_host_gets_at_most_its_concurrent_requests(settings):
    settings.SOURCE_HOST_CONCURRENCY = 2
    with sources.host_slot("busy.example"), sources.host_slot("busy.example"):
        with pytest.raises(sources.HostBusy) as busy:
            sources.host_slot("busy.example").__enter__()
        assert busy.value.retry_after > 0
        with sources.host_slot("other.example"):  # other hosts are not held up
            pass
    with sources.host_slot("busy.example"):  # slots come back when a fetch ends
        pass


def test_a_host_gets_at_most_its_requests_per_minute(source_server, settings):
    settings.SOURCE_HOST_PER_MINUTE = 3
    url = source_server.json_ld_page("/job", job_posting())
    for _ in range(3):
        sources.fetch(url)
    with pytest.raises(sources.HostBusy) as busy:
        sources.fetch(url)
    assert 0 < busy.value.retry_after <= 60
    assert len(source_server.requests("/job")) == 3  # the fourth never reached the server
    sources.fetch(source_server.url("/job", host="localhost"))  # another host name: its own limit


# --- Inside addresses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("[::1]", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("[fe80::1]", "link-local"),
        ("[fc00::1]", "private"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (an address we refuse, not one we bind)
        ("100.64.0.1", "shared"),
        ("[::ffff:127.0.0.1]", "loopback"),  # IPv4-mapped
        ("[2002:7f00:1::]", "loopback"),  # 6to4 of 127.0.0.1
        ("[64:ff9b::a00:1]", "private"),  # NAT64 of 10.0.0.1
        ("240.0.0.1", "reserved"),
        ("2130706433", "loopback"),  # 127.0.0.1 spelled as one number
    ],
)
def test_a_source_at_an_inside_address_is_refused(host, kind):
    with pytest.raises(sources.SourceRefused, match=f"refused .*is a {kind}"):
        sources.fetch(f"http://{host}/internal/admin")


def test_a_public_address_is_not_inside():
    for address in ("8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"):
        assert sources.inside_kind(ipaddress.ip_address(address)) == ""


def test_the_local_source_server_is_refused_unless_its_network_is_allowed(source_server, settings):
    url = source_server.json_ld_page("/internal/admin", job_posting(title="Admin"))
    settings.SOURCE_ALLOWED_NETWORKS = []  # its port is still allowed
    with pytest.raises(sources.SourceRefused, match=r"127\.0\.0\.1 is a loopback address"):
        sources.fetch(url)
    assert source_server.requests() == []


def test_a_port_other_than_80_and_443_is_refused_unless_allowed(source_server, settings):
    url = source_server.json_ld_page("/job", job_posting())
    settings.SOURCE_ALLOWED_PORTS = []  # its address is still allowed
    with pytest.raises(sources.SourceRefused, match=f"port {source_server.port} is not a web"):
        sources.fetch(url)
    assert source_server.requests() == []
    settings.SOURCE_ALLOWED_PORTS = [source_server.port]
    assert sources.fetch(url).status == 200


def resolving(monkeypatch, names: dict[str, list[str]]) -> list[str]:
    """Make ``socket.getaddrinfo`` answer these names with these addresses (in turn, one list per
    lookup, the last repeated); returns the names looked up. Other names resolve as usual."""
    real, asked = socket.getaddrinfo, []

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in names:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        answers = names[host]
        address = answers.pop(0) if len(answers) > 1 else answers[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_a_public_looking_name_that_resolves_inside_is_refused(monkeypatch):
    resolving(monkeypatch, {"jobs.example.com": ["10.0.0.7"]})
    refusal = r"jobs\.example\.com:80: 10\.0\.0\.7 is a private address"
    with pytest.raises(sources.SourceRefused, match=refusal):
        sources.fetch("http://jobs.example.com/job")


def test_the_address_checked_is_the_address_connected_to(source_server, monkeypatch):
    # DNS rebinding: the name answers an allowed address, then an inside one. The connection
    # goes to the address that was checked; the name is not looked up again to connect.
    asked = resolving(monkeypatch, {"jobs.example.test": ["127.0.0.1", "127.0.0.2"]})
    source_server.json_ld_page("/job", job_posting())
    fetched = sources.fetch(source_server.url("/job", host="jobs.example.test"))
    assert fetched.status == 200
    assert asked == ["jobs.example.test"]
    assert source_server.requests("/job")[0].headers["Host"] == (
        f"jobs.example.test:{source_server.port}"
    )
    with pytest.raises(sources.SourceRefused, match=r"127\.0\.0\.2 is a loopback"):
        sources.fetch(source_server.url("/other", host="jobs.example.test"))


@pytest.mark.parametrize(
    ("target", "refusal"),
    [
        ("internal", "port .* is not a web port"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local"),
        ("http://localhost:5432/", "port 5432 is not a web port"),
        ("http://[::1]/", "::1 is a loopback"),
    ],
)
def test_every_redirect_hop_is_checked(source_server, internal_server, target, refusal):
    if target == "internal":
        target = internal_server.url("/internal/admin")
    url = source_server.redirect("/job", target, code=302)
    with pytest.raises(sources.SourceRefused, match=refusal):
        sources.fetch(url)
    assert len(source_server.requests("/job")) == 1  # the first hop was allowed and made
    assert internal_server.requests() == []


def test_a_redirect_to_the_board_itself_is_refused(source_server, settings):
    settings.SITE_URL = "https://jobs.example.com"  # a public name: refused before any lookup
    url = source_server.redirect("/job", f"{settings.SITE_URL}/moderation/", code=302)
    with pytest.raises(sources.SourceRefused, match=r"jobs\.example\.com:443: it is this board"):
        sources.fetch(url)


def test_the_board_under_its_fully_qualified_name_is_still_the_board(
    source_server, settings, monkeypatch
):
    settings.SITE_URL = f"http://jobs.example.com:{source_server.port}"
    resolving(monkeypatch, {"jobs.example.com.": ["127.0.0.1"]})  # the board, here
    source_server.json_ld_page("/moderation/", job_posting(title="Moderation"))
    with pytest.raises(sources.SourceRefused, match=r"jobs\.example\.com\.:\d+: it is this board"):
        sources.fetch(f"http://jobs.example.com.:{source_server.port}/moderation/")
    assert source_server.requests() == []


def test_a_refused_fetch_is_logged(caplog):
    with pytest.raises(sources.SourceRefused):
        sources.fetch("http://169.254.169.254/latest/meta-data/")
    assert "source fetch refused: http://169.254.169.254/latest/meta-data/" in caplog.text
