"""Keep ``Posting.search_vector`` current in PostgreSQL itself, whatever writes the row.

Title weighs most, then the company's name, then the place, then the description. Renaming a
company re-indexes its postings. On SQLite there is no full-text search and nothing to do.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION postings_posting_search_vector() RETURNS trigger AS $$
BEGIN
  NEW.search_vector :=
    setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A') ||
    setweight(to_tsvector('english', coalesce(
      (SELECT name FROM postings_company WHERE id = NEW.company_id), '')), 'B') ||
    setweight(to_tsvector('english', coalesce(NEW.city, '') || ' ' || coalesce(NEW.region, '')), 'C') ||
    setweight(to_tsvector('english', coalesce(NEW.description, '')), 'D');
  RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER posting_search_vector_update
  BEFORE INSERT OR UPDATE OF title, description, company_id, city, region
  ON postings_posting FOR EACH ROW EXECUTE FUNCTION postings_posting_search_vector();

CREATE OR REPLACE FUNCTION postings_company_renamed() RETURNS trigger AS $$
BEGIN
  UPDATE postings_posting SET title = title WHERE company_id = NEW.id;
  RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER company_name_reindexes_postings
  AFTER UPDATE OF name ON postings_company
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
  EXECUTE FUNCTION postings_company_renamed();
"""

DROP = """
DROP TRIGGER IF EXISTS company_name_reindexes_postings ON postings_company;
DROP FUNCTION IF EXISTS postings_company_renamed();
DROP TRIGGER IF EXISTS posting_search_vector_update ON postings_posting;
DROP FUNCTION IF EXISTS postings_posting_search_vector();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("postings", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
