"""Compute ``salary_yearly_max`` in bigint: a month of 250,000,000 (rials, dong) times 12 overflowed
PostgreSQL's integer and the posting could not be saved ("integer out of range").

Django cannot alter a generated column's expression, so the column (and its index) is dropped and
added again; PostgreSQL recomputes it for every row.
"""

import django.db.models.expressions
import django.db.models.functions.comparison
from django.db import migrations, models


def yearly(factor):
    return django.db.models.expressions.CombinedExpression(
        django.db.models.functions.comparison.Cast(
            django.db.models.functions.comparison.Coalesce("salary_max", "salary_min"),
            models.BigIntegerField(),
        ),
        "*",
        models.Value(factor),
    )


class Migration(migrations.Migration):
    dependencies = [("postings", "0002_search_vector_trigger")]

    operations = [
        migrations.RemoveIndex(model_name="posting", name="posting_salary_yearly"),
        migrations.RemoveField(model_name="posting", name="salary_yearly_max"),
        migrations.AddField(
            model_name="posting",
            name="salary_yearly_max",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Case(
                    models.When(salary_period="hour", then=yearly(2080)),
                    models.When(salary_period="day", then=yearly(260)),
                    models.When(salary_period="week", then=yearly(52)),
                    models.When(salary_period="month", then=yearly(12)),
                    models.When(salary_period="year", then=yearly(1)),
                    default=models.Value(None),
                    output_field=models.BigIntegerField(),
                ),
                output_field=models.BigIntegerField(null=True),
            ),
        ),
        migrations.AddIndex(
            model_name="posting",
            index=models.Index(models.F("salary_yearly_max"), name="posting_salary_yearly"),
        ),
    ]
