from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PostingsConfig(AppConfig):
    name = "postings"
    verbose_name = "Job postings"

    def ready(self) -> None:
        from . import signals

        post_migrate.connect(signals.migrated, sender=self, dispatch_uid="migrated_marks")
