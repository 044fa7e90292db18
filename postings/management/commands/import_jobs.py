"""Import aggregated listings from pages that carry a schema.org JobPosting.

python manage.py import_jobs https://example.com/jobs/123 [more URLs]
python manage.py import_jobs --file urls.txt          # one URL per line, # for comments
python manage.py import_jobs --queue --file urls.txt  # let the Celery workers do it
"""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from postings import sources
from postings.imports import ImportRefused, import_url
from postings.tasks import import_source


class Command(BaseCommand):
    help = "Create or update listings from source pages with JobPosting JSON-LD."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("urls", nargs="*", help="Source page addresses.")
        parser.add_argument("--file", help="A file with one address per line.")
        parser.add_argument(
            "--queue", action="store_true", help="Queue one task per address instead."
        )

    def handle(self, *args, urls: list[str], file: str | None, queue: bool, **options) -> None:
        urls = list(urls)
        if file:
            try:
                lines = Path(file).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"Cannot read {file}: {exc}") from exc
            urls += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        if not urls:
            raise CommandError("Give at least one URL, or --file with URLs.")
        failed = 0
        for url in urls:
            if queue:
                import_source.delay(url)
                self.stdout.write(f"queued: {url}")
                continue
            try:
                result = self._import(url)
            except (ImportRefused, sources.SourceUnavailable) as exc:
                failed += 1
                self.stderr.write(f"not imported: {url}: {exc}")
                continue
            self.stdout.write(result.describe())
        if failed:
            raise CommandError(f"{failed} of {len(urls)} addresses were not imported.")

    def _import(self, url: str):
        for _ in range(5):
            try:
                return import_url(url)
            except sources.HostBusy as busy:  # the host's per-minute limit: wait our turn
                self.stderr.write(f"waiting {busy.retry_after:.0f} s: {busy}")
                time.sleep(busy.retry_after)
        raise sources.SourceUnavailable("the host stayed at its request limit")
