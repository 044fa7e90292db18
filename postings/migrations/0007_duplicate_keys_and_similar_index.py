"""Duplicate keys (postings/duplicates.py) and the indexes that look them up and find similar
jobs. Adding a column with a constant default is instant on PostgreSQL; 0008 fills existing rows.
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('postings', '0006_rechecks_and_reminders'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='posting',
            name='apply_key',
            field=models.CharField(blank=True, default='', editable=False, max_length=40),
        ),
        migrations.AddField(
            model_name='posting',
            name='description_key',
            field=models.CharField(blank=True, default='', editable=False, max_length=40),
        ),
        migrations.AddField(
            model_name='posting',
            name='title_key',
            field=models.CharField(blank=True, default='', editable=False, max_length=200),
        ),
        migrations.AddIndex(
            model_name='posting',
            index=models.Index(models.F('company'), models.F('title_key'), name='posting_company_title_key'),
        ),
        migrations.AddIndex(
            model_name='posting',
            index=models.Index(models.F('description_key'), condition=models.Q(('description_key', ''), _negated=True), name='posting_description_key'),
        ),
        migrations.AddIndex(
            model_name='posting',
            index=models.Index(models.F('apply_key'), condition=models.Q(('apply_key', ''), _negated=True), name='posting_apply_key'),
        ),
        migrations.AddIndex(
            model_name='posting',
            index=models.Index(models.F('practice_area'), models.F('seniority'), models.F('country'), models.OrderBy(models.F('posted_at'), descending=True), condition=models.Q(('status', 'published')), name='posting_pub_similar_place'),
        ),
        migrations.AddIndex(
            model_name='posting',
            index=models.Index(models.F('practice_area'), models.F('seniority'), models.OrderBy(models.F('posted_at'), descending=True), condition=models.Q(('status', 'published'), ('workplace', 'remote')), name='posting_pub_similar_remote'),
        ),
    ]
