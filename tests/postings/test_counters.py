"""View and apply-click counters: one count per visitor, listing and day; nothing lost, nothing
counted twice, whether counts go straight to the database or through the Redis buffer."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta

import pytest
import redis
from django.db import connection
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from jobboard import redis_breaker
from postings import changes, counters
from postings.factories import PublishedPostingFactory
from postings.models import Posting, PostingQuerySet, ViewCountFlush
from tests.hung_redis import HungRedis

BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
OTHER_BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0"
)
CONCURRENT_REASON = "needs PostgreSQL for concurrent writers"


def visit(ip: str = "203.0.113.7", user_agent: str = BROWSER, **meta):
    return RequestFactory().get("/jobs/", REMOTE_ADDR=ip, HTTP_USER_AGENT=user_agent, **meta)


def total(posting: Posting, counter: str = "views") -> int:
    """What a page shows: the stored count plus what is still buffered."""
    posting.refresh_from_db()
    stored = getattr(posting, counters.COUNTERS[counter])
    return stored + counters.pending_counts([posting.pk], counter).get(posting.pk, 0)


def stored(posting: Posting, counter: str = "views") -> int:
    posting.refresh_from_db()
    return getattr(posting, counters.COUNTERS[counter])


@pytest.fixture(params=["redis", "database"])
def shape(request):
    """Run a test both with the Redis buffer (production) and straight to the database."""
    if request.param == "redis":
        request.getfixturevalue("redis_client")
    else:
        request.getfixturevalue("without_redis")
    return request.param


@pytest.fixture
def posting(db):
    return PublishedPostingFactory(view_count=0, apply_click_count=0)


# --- who is counted --------------------------------------------------------------------------


def test_a_visitor_reloading_twenty_times_is_counted_once(shape, posting):
    results = [counters.count_once(visit(), posting.pk) for _ in range(20)]
    assert results == [True] + [False] * 19
    assert total(posting) == 1


def test_distinct_visitors_are_each_counted(shape, posting):
    for ip in ("203.0.113.1", "203.0.113.2", "2001:db8::3"):
        assert counters.count_once(visit(ip=ip), posting.pk)
    assert total(posting) == 3


def test_two_browsers_behind_one_address_are_two_visitors(shape, posting):
    assert counters.count_once(visit(user_agent=BROWSER), posting.pk)
    assert counters.count_once(visit(user_agent=OTHER_BROWSER), posting.pk)
    assert total(posting) == 2


@pytest.mark.parametrize(
    "user_agent",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "curl/8.5.0",
        "python-requests/2.32.3",
        "",
        "   ",
    ],
    ids=["googlebot", "bingbot", "curl", "python-requests", "empty", "blank"],
)
def test_bots_and_clients_without_a_user_agent_are_not_counted(shape, posting, user_agent):
    assert counters.count_once(visit(user_agent=user_agent), posting.pk) is False
    assert total(posting) == 0


def test_a_request_without_any_user_agent_header_is_not_counted(shape, posting):
    request = RequestFactory().get("/jobs/", REMOTE_ADDR="203.0.113.7")
    assert counters.count_once(request, posting.pk) is False
    assert total(posting) == 0


def test_a_bot_visit_does_not_use_up_the_real_visitors_count(shape, posting):
    counters.count_once(visit(user_agent="curl/8.5.0"), posting.pk)
    assert counters.count_once(visit(), posting.pk)
    assert total(posting) == 1


def test_each_listing_and_each_counter_is_counted_separately(shape, posting):
    other = PublishedPostingFactory(view_count=0)
    assert counters.count_once(visit(), posting.pk, "views")
    assert counters.count_once(visit(), other.pk, "views")
    assert counters.count_once(visit(), posting.pk, "applies")
    assert total(posting, "views") == 1
    assert total(other, "views") == 1
    assert total(posting, "applies") == 1
    assert total(other, "applies") == 0


def test_the_same_visitor_is_counted_again_the_next_day(shape, posting, monkeypatch):
    assert counters.count_once(visit(), posting.pk)
    tomorrow = timezone.now() + timedelta(days=1)
    monkeypatch.setattr(timezone, "now", lambda: tomorrow)
    assert counters.count_once(visit(), posting.pk)
    assert not counters.count_once(visit(), posting.pk)
    assert total(posting) == 2


def test_an_unknown_counter_is_a_programming_error(posting):
    with pytest.raises(ValueError, match="unknown counter"):
        counters.count_once(visit(), posting.pk, "likes")


def test_a_forged_forwarded_for_header_does_not_make_new_visitors(shape, posting, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    for n in range(5):
        counters.count_once(visit(HTTP_X_FORWARDED_FOR=f"198.51.100.{n}"), posting.pk)
    assert total(posting) == 1


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "198.51.100.1", "10.0.0.1"),  # no proxy of ours: the header is the visitor's say-so
        (1, "198.51.100.1", "198.51.100.1"),
        (1, "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the visitor prepended a fake address
        (2, "6.6.6.6, 198.51.100.1, 10.1.1.1", "198.51.100.1"),
        (2, "198.51.100.1", "10.0.0.1"),  # fewer hops than proxies: fall back to the socket
        (1, "", "10.0.0.1"),
    ],
)
def test_the_visitor_address_trusts_forwarded_for_only_as_far_as_our_proxies(
    settings, hops, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = hops
    request = visit(ip="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert counters.client_ip(request) == expected


def test_the_visitor_fingerprint_is_a_salted_hash_not_the_address(settings):
    request = visit(ip="203.0.113.7")
    fingerprint = counters.visitor_fingerprint(request)
    assert "203.0.113.7" not in fingerprint
    assert len(fingerprint) == 32
    assert fingerprint == counters.visitor_fingerprint(visit(ip="203.0.113.7"))
    settings.SECRET_KEY = "another-secret-" * 4
    assert counters.visitor_fingerprint(request) != fingerprint


# --- without Redis: one atomic UPDATE per count ---------------------------------------------


def test_without_redis_a_count_goes_straight_to_the_row(without_redis, posting):
    PublishedPostingFactory(view_count=0)  # a neighbour that must stay untouched
    assert counters.count_once(visit(), posting.pk)
    assert stored(posting) == 1
    assert Posting.objects.exclude(pk=posting.pk).get().view_count == 0
    assert counters.pending_counts([posting.pk]) == {}
    assert counters.flush() == 0
    assert stored(posting) == 1


def test_without_redis_an_apply_click_goes_to_the_apply_click_count(without_redis, posting):
    assert counters.count_once(visit(), posting.pk, "applies")
    posting.refresh_from_db()
    assert (posting.apply_click_count, posting.view_count) == (1, 0)


# --- with Redis: buffered, then flushed ------------------------------------------------------


def count_visitors(posting: Posting, n: int, counter: str = "views", start: int = 0) -> None:
    for i in range(start, start + n):
        assert counters.count_once(visit(ip=f"198.51.100.{i}"), posting.pk, counter)


def batch_keys(client) -> set[bytes]:
    return set(client.scan_iter(match=counters._key("batch", "*")))


def test_with_redis_a_count_is_buffered_and_the_row_is_not_written(redis_client, posting):
    count_visitors(posting, 3)
    assert stored(posting) == 0
    assert counters.pending_counts([posting.pk]) == {posting.pk: 3}


def test_pending_counts_adds_every_buffered_count_by_listing(redis_client, posting):
    other = PublishedPostingFactory()
    untouched = PublishedPostingFactory()
    count_visitors(posting, 3)
    count_visitors(other, 1)
    assert counters.pending_counts([posting.pk, other.pk, untouched.pk]) == {
        posting.pk: 3,
        other.pk: 1,
    }
    assert counters.pending_counts([]) == {}
    assert counters.pending_counts([posting.pk], "applies") == {}


def test_pending_counts_include_a_batch_being_flushed(redis_client, posting, monkeypatch):
    count_visitors(posting, 2)
    monkeypatch.setattr(counters, "_apply_batch", boom)  # sealed, then the flush dies
    with pytest.raises(RuntimeError):
        counters.flush()
    count_visitors(posting, 3, start=100)  # new counts go to a fresh pending hash
    assert counters.pending_counts([posting.pk]) == {posting.pk: 5}
    assert total(posting) == 5


def test_flush_moves_buffered_counts_into_the_rows_exactly(redis_client, posting):
    other = PublishedPostingFactory(view_count=10)
    count_visitors(posting, 3)
    count_visitors(other, 2)

    assert counters.flush() == 5

    assert stored(posting) == 3
    assert stored(other) == 12
    assert counters.pending_counts([posting.pk, other.pk]) == {}
    record = ViewCountFlush.objects.get()
    assert (record.postings, record.views) == (2, 5)
    assert record.batch_id.startswith("views:")
    assert batch_keys(redis_client) == set()


def test_a_flush_does_not_change_what_a_reader_sees(redis_client, posting):
    count_visitors(posting, 4)
    before = total(posting)
    counters.flush()
    assert total(posting) == before == 4


def test_flushing_again_adds_nothing(redis_client, posting):
    count_visitors(posting, 3)
    counters.flush()
    assert counters.flush() == 0
    assert stored(posting) == 3
    assert ViewCountFlush.objects.count() == 1


def test_a_flush_with_nothing_buffered_records_no_batch(redis_client, posting):
    assert counters.flush() == 0
    assert not ViewCountFlush.objects.exists()


def test_apply_clicks_flush_into_the_apply_click_count(redis_client, posting):
    count_visitors(posting, 2, "applies")
    count_visitors(posting, 1, "views")
    assert counters.flush("applies") == 2
    posting.refresh_from_db()
    assert (posting.apply_click_count, posting.view_count) == (2, 0)
    assert counters.pending_counts([posting.pk], "views") == {posting.pk: 1}


def test_the_periodic_task_flushes_views_and_apply_clicks(redis_client, posting):
    from postings.tasks import flush_view_counts

    count_visitors(posting, 2, "views")
    count_visitors(posting, 1, "applies")
    assert flush_view_counts() == 3
    posting.refresh_from_db()
    assert (posting.view_count, posting.apply_click_count) == (2, 1)


def test_counts_for_a_deleted_listing_do_not_stop_the_others(redis_client, posting):
    gone = PublishedPostingFactory()
    count_visitors(posting, 2)
    count_visitors(gone, 1)
    gone.delete()
    counters.flush()
    assert stored(posting) == 2
    assert batch_keys(redis_client) == set()


def test_a_flush_that_finds_another_flushing_leaves_the_counts_for_it(redis_client, posting):
    count_visitors(posting, 2)
    lock = redis_client.lock(counters._key("flush-lock", "views"), timeout=30)
    assert lock.acquire(blocking=False)
    try:
        assert counters.flush() == 0
        assert stored(posting) == 0
        assert counters.pending_counts([posting.pk]) == {posting.pk: 2}
    finally:
        lock.release()
    assert counters.flush() == 2


def boom(*args, **kwargs):
    raise RuntimeError("the worker died here")


def test_a_flush_that_dies_after_its_commit_does_not_count_twice(
    redis_client, posting, monkeypatch
):
    count_visitors(posting, 3)
    forget = counters._forget_batch
    calls = {"n": 0}

    def dies_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the worker died between the commit and the Redis cleanup")
        return forget(*args, **kwargs)

    monkeypatch.setattr(counters, "_forget_batch", dies_once)
    with pytest.raises(RuntimeError):
        counters.flush()
    assert stored(posting) == 3  # committed
    assert len(batch_keys(redis_client)) == 1  # but the batch is still in Redis

    count_visitors(posting, 2, start=100)
    assert counters.flush() == 2  # only the new counts; the old batch is just cleaned up

    assert stored(posting) == 5
    assert counters.pending_counts([posting.pk]) == {}
    assert batch_keys(redis_client) == set()
    assert ViewCountFlush.objects.count() == 2


def test_a_reader_does_not_count_an_applied_batch_twice_before_its_cleanup(
    redis_client, posting, monkeypatch
):
    count_visitors(posting, 3)
    monkeypatch.setattr(counters, "_forget_batch", boom)
    with pytest.raises(RuntimeError):
        counters.flush()
    # The batch is in the row and still in Redis until the next flush: show it once.
    assert total(posting) == 3


def test_a_flush_that_dies_before_its_commit_loses_nothing(redis_client, posting, monkeypatch):
    other = PublishedPostingFactory(view_count=0)
    count_visitors(posting, 3)
    count_visitors(other, 1)
    with monkeypatch.context() as patch:
        # Dies inside the transaction, after the batch id is written and before the commit.
        patch.setattr(PostingQuerySet, "update", boom)
        with pytest.raises(RuntimeError):
            counters.flush()
    assert stored(posting) == 0
    assert stored(other) == 0
    assert not ViewCountFlush.objects.exists()  # the batch record was rolled back too
    assert counters.pending_counts([posting.pk, other.pk]) == {posting.pk: 3, other.pk: 1}

    count_visitors(posting, 1, start=100)
    assert counters.flush() == 5

    assert stored(posting) == 4
    assert stored(other) == 1
    assert counters.flush() == 0
    assert stored(posting) == 4
    assert batch_keys(redis_client) == set()


def test_a_batch_recorded_by_another_flusher_is_not_applied_again(
    redis_client, posting, monkeypatch
):
    count_visitors(posting, 3)
    monkeypatch.setattr(counters, "_apply_batch", boom)
    with pytest.raises(RuntimeError):
        counters.flush()  # sealed into a batch, not applied
    monkeypatch.undo()
    (batch_key,) = batch_keys(redis_client)
    batch_id = f"views:{batch_key.decode().rsplit(':', 1)[-1]}"
    ViewCountFlush.objects.create(batch_id=batch_id, postings=1, views=3)  # someone else did it

    assert counters.flush() == 0
    assert stored(posting) == 0
    assert batch_keys(redis_client) == set()


def test_batch_records_older_than_a_week_are_pruned_and_recent_ones_kept(posting):
    old = ViewCountFlush.objects.create(batch_id="views:old", postings=1, views=1)
    recent = ViewCountFlush.objects.create(batch_id="views:recent", postings=1, views=1)
    ViewCountFlush.objects.filter(pk=old.pk).update(flushed_at=timezone.now() - timedelta(days=8))
    assert counters.forget_old_flushes() == 1
    assert list(ViewCountFlush.objects.all()) == [recent]


# --- many visitors at once (PostgreSQL: real concurrent connections) -------------------------


def run_threads(n: int, work) -> list:
    """Run ``work(i)`` in n threads started together; re-raise the first error."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a counting thread hung"
    if errors:
        raise errors[0]
    return results


@pytest.fixture
def committed_posting(transactional_db):
    return PublishedPostingFactory(view_count=0)


@pytest.mark.postgres(reason=CONCURRENT_REASON)
def test_fifty_concurrent_visitors_buffered_in_redis_are_flushed_exactly(
    redis_client, committed_posting
):
    results = run_threads(
        50, lambda i: counters.count_once(visit(ip=f"10.1.0.{i}"), committed_posting.pk)
    )
    assert results == [True] * 50
    assert stored(committed_posting) == 0  # all buffered, none written yet
    assert counters.pending_counts([committed_posting.pk]) == {committed_posting.pk: 50}
    assert counters.flush() == 50
    assert stored(committed_posting) == 50


@pytest.mark.postgres(reason=CONCURRENT_REASON)
def test_fifty_concurrent_visitors_straight_to_the_database_are_counted_exactly(
    without_redis, committed_posting
):
    results = run_threads(
        50, lambda i: counters.count_once(visit(ip=f"10.1.0.{i}"), committed_posting.pk)
    )
    assert results == [True] * 50
    assert stored(committed_posting) == 50


@pytest.mark.postgres(reason=CONCURRENT_REASON)
def test_twenty_simultaneous_reloads_by_one_visitor_count_once(shape, committed_posting):
    results = run_threads(20, lambda i: counters.count_once(visit(), committed_posting.pk))
    assert results.count(True) == 1
    counters.flush()
    assert stored(committed_posting) == 1


@pytest.mark.postgres(reason=CONCURRENT_REASON)
def test_flushes_running_while_visitors_arrive_neither_lose_nor_double_count(
    redis_client, committed_posting
):
    def work(i: int) -> int:
        if i % 5 == 0:  # every fifth thread is a flushing worker
            return sum(counters.flush() for _ in range(3))
        counters.count_once(visit(ip=f"10.2.0.{i}"), committed_posting.pk)
        return 0

    flushed = sum(run_threads(50, work))
    flushed += counters.flush()

    assert flushed == 40
    assert stored(committed_posting) == 40
    assert counters.pending_counts([committed_posting.pk]) == {}
    assert sum(ViewCountFlush.objects.values_list("views", flat=True)) == 40


def test_old_flush_records_are_pruned_unless_their_batch_still_waits(db, redis_client, settings):
    long_ago = timezone.now() - timedelta(days=30)
    waiting = ViewCountFlush.objects.create(batch_id="views:waiting", postings=1, views=1)
    done = ViewCountFlush.objects.create(batch_id="views:done", postings=1, views=1)
    ViewCountFlush.objects.create(batch_id="views:recent", postings=1, views=1)
    ViewCountFlush.objects.filter(pk__in=[waiting.pk, done.pk]).update(flushed_at=long_ago)
    redis_client.sadd(
        f"{settings.REDIS_KEY_PREFIX}:counters:batches:views",
        f"{settings.REDIS_KEY_PREFIX}:counters:batch:views:waiting",
    )

    assert counters.forget_old_flushes() == 1

    remaining = set(ViewCountFlush.objects.values_list("batch_id", flat=True))
    assert remaining == {"views:waiting", "views:recent"}


def test_a_visitor_is_still_remembered_after_many_others_on_the_embedded_cache(
    without_redis, posting
):
    first = counters.count_once(visit(ip="203.0.113.1"), posting.pk)
    for n in range(600):  # more than a default local-memory cache keeps
        counters.count_once(visit(ip=f"198.51.{n // 250}.{n % 250}"), posting.pk)
    again = counters.count_once(visit(ip="203.0.113.1"), posting.pk)
    assert first and not again
    assert total(posting) == 601


def test_one_address_counts_at_most_a_few_visitors_a_day_however_many_browsers(
    shape, posting, settings
):
    settings.COUNTS_PER_ADDRESS_PER_DAY = 3
    counted = [
        counters.count_once(visit(ip="203.0.113.7", user_agent=f"{BROWSER} v{n}"), posting.pk)
        for n in range(20)
    ]
    assert counted.count(True) == 3
    assert total(posting) == 3


def test_a_counter_that_cannot_reach_its_store_does_not_break_the_page(posting, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(counters, "_count_once", down)
    assert counters.count_once(visit(ip="203.0.113.9"), posting.pk) is False


def test_head_requests_are_not_counted(shape, posting):
    request = RequestFactory().head("/jobs/", REMOTE_ADDR="203.0.113.5", HTTP_USER_AGENT=BROWSER)
    assert counters.count_once(request, posting.pk) is False
    assert total(posting) == 0


# --- Redis away: counted straight into the rows, flushed never ---------------------------------


class RedisAway:
    """The counters' client pointed at another server until ``back()``."""

    def __init__(self, settings, url: str) -> None:
        self.settings, self.reachable = settings, settings.REDIS_URL
        settings.REDIS_URL = url
        counters.get_redis.cache_clear()

    def back(self) -> None:
        self.settings.REDIS_URL = self.reachable
        counters.get_redis.cache_clear()
        redis_breaker.resume_all()


def closed_port_url() -> str:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    url = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
    closed.close()  # nothing listens there: every connection is refused
    return url


@pytest.fixture
def redis_down(redis_client, settings):
    away = RedisAway(settings, closed_port_url())
    yield away
    away.back()


@pytest.fixture
def hung_redis(redis_client, settings):
    server = HungRedis()
    settings.REDIS_TIMEOUT = 0.2
    settings.REDIS_BACKOFF_SECONDS = 60
    away = RedisAway(settings, server.url)
    yield server
    away.back()
    server.close()


@pytest.mark.parametrize("counter", ["views", "applies"])
def test_while_redis_is_down_every_visitor_is_counted_straight_into_the_row(
    redis_down, posting, counter
):
    neighbour = PublishedPostingFactory(view_count=0, apply_click_count=0)
    counted = [
        counters.count_once(visit(ip=f"198.51.{i // 200}.{i % 200}"), posting.pk, counter)
        for i in range(150)
    ]
    assert counted == [True] * 150
    assert stored(posting, counter) == 150
    assert stored(neighbour, counter) == 0
    other = "applies" if counter == "views" else "views"
    assert stored(posting, other) == 0


def test_while_redis_is_down_a_visitor_reloading_is_counted_once(redis_down, posting):
    results = [counters.count_once(visit(), posting.pk) for _ in range(20)]
    assert results == [True] + [False] * 19
    assert stored(posting) == 1


def test_while_redis_is_down_one_address_still_counts_only_a_few_visitors(
    redis_down, posting, settings
):
    settings.COUNTS_PER_ADDRESS_PER_DAY = 3
    for n in range(10):
        counters.count_once(visit(user_agent=f"{BROWSER} v{n}"), posting.pk)
    assert stored(posting) == 3


def test_while_redis_is_down_bots_are_still_not_counted(redis_down, posting):
    assert not counters.count_once(visit(user_agent="curl/8.5.0"), posting.pk)
    assert stored(posting) == 0


def test_when_redis_is_back_the_flush_adds_only_what_redis_buffered(
    redis_down, redis_client, posting
):
    count_visitors(posting, 5)  # during the outage: in the row already
    assert stored(posting) == 5
    with pytest.raises(redis.ConnectionError):  # the flush waits for Redis; nothing is lost
        counters.flush()

    redis_down.back()
    count_visitors(posting, 3, start=100)  # buffered again
    assert stored(posting) == 5
    assert total(posting) == 8

    assert counters.flush() == 3
    assert counters.flush() == 0
    assert stored(posting) == 8
    assert total(posting) == 8


def test_a_hung_redis_costs_one_wait_then_every_count_goes_to_the_row(hung_redis, posting):
    counted = [counters.count_once(visit(ip=f"198.51.100.{i}"), posting.pk) for i in range(20)]
    assert counted == [True] * 20
    assert stored(posting) == 20
    assert len(hung_redis.accepted) <= 2  # the first call and its one retry; then paused


def test_listing_pages_and_apply_clicks_are_counted_while_redis_is_down(redis_down, posting):
    posting.applies_on_board = False
    posting.apply_url = "https://careers.example/apply/42"
    posting.save()
    for i in range(7):
        client = Client(HTTP_USER_AGENT=BROWSER, REMOTE_ADDR=f"203.0.113.{i}")
        assert client.get(posting.get_absolute_url()).status_code == 200
        apply = client.get(reverse("postings:apply", args=[posting.pk]))
        assert apply.status_code == 302
    posting.refresh_from_db()
    assert (posting.view_count, posting.apply_click_count) == (7, 7)


@pytest.mark.postgres(reason=CONCURRENT_REASON)
def test_fifty_concurrent_visitors_while_redis_is_down_are_counted_exactly(
    redis_down, committed_posting
):
    results = run_threads(
        50, lambda i: counters.count_once(visit(ip=f"10.3.0.{i}"), committed_posting.pk)
    )
    assert results == [True] * 50
    assert stored(committed_posting) == 50


# --- A listing's page: its count and its reads in one round trip (count_and_read) --------------


def page_reads(request, posting: Posting, **kwargs) -> counters.PageReads:
    return counters.count_and_read(
        request, posting.pk, **{"count": "views", "read": ["views", "applies"], **kwargs}
    )


def shown(posting: Posting, found: counters.PageReads, counter: str = "views") -> int:
    """What the page shows: the stored count plus what the round trip found buffered."""
    return stored(posting, counter) + found.pending.get(counter, 0)


def test_the_pages_round_trip_counts_a_visitor_once_and_shows_their_view(shape, posting):
    for _ in range(5):
        assert shown(posting, page_reads(visit(), posting)) == 1
    assert shown(posting, page_reads(visit(ip="203.0.113.8"), posting)) == 2
    assert shown(posting, page_reads(visit(), posting, count=None)) == 2  # read, not counted
    assert total(posting) == 2


@pytest.mark.parametrize("user_agent", ["", "Googlebot/2.1 (+http://www.google.com/bot.html)"])
def test_the_pages_round_trip_counts_no_bot(shape, posting, user_agent):
    assert shown(posting, page_reads(visit(user_agent=user_agent), posting)) == 0
    head = RequestFactory().head("/jobs/", REMOTE_ADDR="203.0.113.5", HTTP_USER_AGENT=BROWSER)
    assert shown(posting, page_reads(head, posting)) == 0


def test_the_pages_round_trip_reads_each_counter_apart(redis_client, posting):
    count_visitors(posting, 2, "applies")
    found = page_reads(visit(), posting)
    assert found.pending == {"views": 1, "applies": 2}
    assert page_reads(visit(), posting, read=["views"]).pending == {"views": 1}


def test_the_pages_round_trip_reads_a_batch_being_flushed(redis_client, posting, monkeypatch):
    count_visitors(posting, 2)
    monkeypatch.setattr(counters, "_apply_batch", boom)  # sealed, then the flush dies
    with pytest.raises(RuntimeError):
        counters.flush()
    count_visitors(posting, 3, start=100)
    assert shown(posting, page_reads(visit(), posting)) == 6


def test_the_pages_round_trip_does_not_show_an_applied_batch_twice(
    redis_client, posting, monkeypatch
):
    count_visitors(posting, 3)
    monkeypatch.setattr(counters, "_forget_batch", boom)
    with pytest.raises(RuntimeError):
        counters.flush()
    # In the row, and in Redis until the next flush: shown once.
    assert shown(posting, page_reads(visit(), posting, count=None)) == 3


def test_the_pages_round_trip_reads_a_kept_value_with_its_changed_marks(redis_client, posting):
    marks = changes.current([posting.pk], [posting.company_id])
    changes.keep("jobboard:test:kept", b"value", marks, 60)
    found = page_reads(visit(), posting, kept=["jobboard:test:kept", "jobboard:test:none"])
    assert found.kept == [(b"value", frozenset()), None]
    changes.changed(changes.LISTING, [posting.pk])
    found = page_reads(visit(), posting, kept=["jobboard:test:kept"])
    assert found.kept == [(b"value", frozenset({changes.mark_key(changes.LISTING, posting.pk)}))]


def test_while_redis_is_down_the_pages_round_trip_counts_into_the_row(redis_down, posting):
    for _ in range(3):
        found = page_reads(visit(), posting, kept=["jobboard:test:kept"])
        assert (found.pending, found.kept) == ({}, None)
    assert stored(posting) == 1
    assert stored(posting, "applies") == 0


def test_without_redis_the_pages_round_trip_counts_into_the_row(without_redis, posting):
    found = page_reads(visit(), posting)
    assert (found.pending, found.kept) == ({}, None)
    assert stored(posting) == 1


def test_a_page_whose_round_trip_fails_unexpectedly_still_shows(redis_client, posting, monkeypatch):
    def broken(client):
        def call(**kwargs):
            raise RuntimeError("not a Redis error")

        return call

    monkeypatch.setattr(counters, "_page_reads_script", broken)
    response = Client(HTTP_USER_AGENT=BROWSER).get(posting.get_absolute_url())
    assert response.status_code == 200
    assert response.context["view_count"] == 0


def test_the_pages_round_trip_refuses_an_unknown_counter(posting):
    with pytest.raises(ValueError, match="likes"):
        page_reads(visit(), posting, count="likes")
