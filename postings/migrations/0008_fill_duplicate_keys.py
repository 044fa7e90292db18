"""Fill the duplicate keys of existing postings (new and edited ones get them on save).

Not atomic: batches commit one by one, so a million postings are not locked in one long
transaction (the re-check worker skips locked rows and would stall). Only rows whose keys differ
are written, so running it again (after an interruption) costs a read of the table. One UPDATE
per row, sent together (psycopg pipelines ``executemany``): a CASE-per-column ``bulk_update``
grows with the batch squared, and each written row costs an entry in every index of the table.
"""

from django.db import migrations, transaction

BATCH = 2000


def fill_keys(apps, schema_editor):
    from postings import duplicates

    Posting = apps.get_model("postings", "Posting")
    connection = schema_editor.connection
    table = schema_editor.quote_name(Posting._meta.db_table)
    sql = f"UPDATE {table} SET title_key = %s, description_key = %s, apply_key = %s WHERE id = %s"
    last = 0
    while True:
        # By primary key only: a filter on the (empty) keys would send the planner to their index.
        batch = list(
            Posting.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list(
                "pk", "title", "description", "description_html", "apply_url",
                "title_key", "description_key", "apply_key",
            )[:BATCH]
        )  # fmt: skip
        if not batch:
            return
        rows = []
        for pk, title, description, description_html, apply_url, *stored in batch:
            keys = [
                duplicates.title_key(title),
                duplicates.description_key(description_html or description),
                duplicates.apply_key(apply_url),
            ]
            if keys != stored:
                rows.append((*keys, pk))
        # Only the new columns: the search trigger (on title, description, ...) stays quiet.
        if rows:
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                cursor.executemany(sql, rows)
        last = batch[-1][0]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("postings", "0007_duplicate_keys_and_similar_index")]

    operations = [migrations.RunPython(fill_keys, migrations.RunPython.noop, elidable=True)]
