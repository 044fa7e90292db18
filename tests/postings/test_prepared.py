"""A listing's page's statements are planned once per connection (``rows.prepared_cursor``)."""

from __future__ import annotations

import pytest
from django.db import connection

from postings import listing_page, similar
from postings.factories import PublishedPostingFactory
from postings.models import Posting

pytestmark = pytest.mark.django_db


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL prepares statements")
def test_the_listing_and_its_similar_jobs_are_read_by_prepared_statements():
    place = {"city": "Lisbon", "country": "PT", "practice_area": "legal", "seniority": "senior"}
    posting = PublishedPostingFactory(**place, title="Counsel", description="Contracts.")
    other = PublishedPostingFactory(**place, title="Lawyer", description="Disputes and courts.")
    found = listing_page.listing(posting.pk)
    assert found == posting
    assert [card.pk for card in similar.similar_postings(found, kept=None)] == [other.pk]
    statements = _prepared()
    # The listing, the group's newest listings, their cards: parameters, constants written in.
    assert any('WHERE "postings_posting"."id" = $1' in s for s in statements)
    assert any("UNION ALL" in s and "status = 'published'" in s for s in statements)
    assert any("= ANY($1::bigint[])" in s for s in statements)
    # Django's own statements are not prepared.
    assert Posting.objects.filter(pk=posting.pk).exists()
    assert len(_prepared()) == len(statements)
