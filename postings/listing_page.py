"""What a listing's page reads of the database: the listing and its company in one statement,
and only when it was listed again, that listing and its company in a second.

Plain SQL (``rows.Columns``): built by the ORM, the statement (with the listing it repeats joined
in, some two hundred columns) took longer to put together than to run. Only what the page shows
and what keeping it needs (``pagecache.fingerprint``) is read: not the Markdown source, the search
vector or the re-checker's bookkeeping. The listing it repeats is rare, and joining it in doubled
PostgreSQL's planning of every listing's statement.
"""

from __future__ import annotations

from .models import Company, Posting
from .rows import Columns, prepared_cursor

# Posting columns the page has no use for (deferred: reading one would cost a query).
NOT_SHOWN = frozenset(
    {
        "description",
        "search_vector",
        "salary_yearly_max",
        "created_by",
        "created_at",
        "apply_key",
        "next_check_at",
        "check_attempted_at",
        "check_failures",
        "check_note",
        "source_etag",
        "source_last_modified",
        "source_hash",
        "deadline_reminder_sent_at",
    }
)
LISTING = Columns(
    Posting, [f.name for f in Posting._meta.concrete_fields if f.name not in NOT_SHOWN]
)
COMPANY = Columns(Company, [f.name for f in Company._meta.concrete_fields])
# The listing it repeats: its banner links to it while it is open.
REPEATED = Columns(
    Posting, ["company", "title", "slug", "status", "posted_at", "deadline", "modified_at"]
)
REPEATED_COMPANY = Columns(Company, ["name", "slug", "modified_at"])


_LARGEST_ID = 2**63 - 1  # a bigint, as Django's ORM would check before asking


def listing(pk: int) -> Posting | None:
    """The listing ``pk`` in any status, with its company and the listing it repeats (None when
    there is no such listing)."""
    if not 0 < pk <= _LARGEST_ID:  # the address takes any digits; the database would refuse
        return None
    found = _read(LISTING, COMPANY, pk)
    if found is not None and found.duplicate_of_id is not None:
        repeated = _read(REPEATED, REPEATED_COMPANY, found.duplicate_of_id)
        Posting.duplicate_of.field.set_cached_value(found, repeated)
    return found


def _read(listing_columns: Columns, company_columns: Columns, pk: int) -> Posting | None:
    p, c = listing_columns.table(), company_columns.table()
    with prepared_cursor() as cursor:
        cursor.execute(
            # Only column and table names are formatted in; the id is a parameter.
            f"SELECT {listing_columns.sql()}, {company_columns.sql()} FROM {p}"  # noqa: S608
            f' INNER JOIN {c} ON {c}."id" = {p}.company_id WHERE {p}."id" = %s',
            [pk],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    posting = listing_columns.build(row)
    company = company_columns.build(row, listing_columns.width)
    Posting.company.field.set_cached_value(posting, company)
    return posting
