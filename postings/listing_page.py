"""What a listing's page reads of the database: the listing, its company, and the listing it is
listed again as (with that one's company), in one statement.

Plain SQL (``rows.Columns``): built by the ORM, the four tables' two hundred columns took longer to
put together than the statement took to run. Only what the page shows and what keeping it needs
(``pagecache.fingerprint``) is read: not the Markdown source, the search vector or the
re-checker's bookkeeping, which are as long as the description or no business of the page.
"""

from __future__ import annotations

from django.db import connection

from .models import Company, Posting
from .rows import Columns

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
    Posting,
    ["company", "title", "slug", "status", "posted_at", "deadline", "modified_at"],
    "d",
)
REPEATED_COMPANY = Columns(Company, ["name", "slug", "modified_at"], "dc")


def listing(pk: int) -> Posting | None:
    """The listing ``pk`` in any status, with its company and the listing it repeats (None when
    there is no such listing)."""
    p, c = LISTING.table(), COMPANY.table()
    columns = ", ".join(part.sql() for part in (LISTING, COMPANY, REPEATED, REPEATED_COMPANY))
    with connection.cursor() as cursor:
        cursor.execute(
            # Only column and table names are formatted in; the id is a parameter.
            f"SELECT {columns} FROM {p}"  # noqa: S608
            f" INNER JOIN {c} ON {c}.id = {p}.company_id"
            f" LEFT JOIN {p} d ON d.id = {p}.duplicate_of_id"
            f" LEFT JOIN {c} dc ON dc.id = d.company_id"
            f' WHERE {p}."id" = %s',
            [pk],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    posting = LISTING.build(row)
    start = LISTING.width
    Posting.company.field.set_cached_value(posting, COMPANY.build(row, start))
    start += COMPANY.width
    repeated = REPEATED.build(row, start)
    if repeated is not None:
        start += REPEATED.width
        Posting.company.field.set_cached_value(repeated, REPEATED_COMPANY.build(row, start))
    Posting.duplicate_of.field.set_cached_value(posting, repeated)
    return posting
