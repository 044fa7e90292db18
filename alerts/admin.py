from django.contrib import admin

from .models import AlertDelivery, SavedSearch


@admin.register(SavedSearch)
class SavedSearchAdmin(admin.ModelAdmin):
    list_display = ("email", "query", "frequency", "confirmed_at", "unsubscribed_at",
                    "last_sent_at", "alerts_sent")  # fmt: skip
    list_filter = ("frequency",)
    search_fields = ("email", "query")
    readonly_fields = ("created_at", "covered_until", "queued_at", "last_sent_at", "alerts_sent")


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(admin.ModelAdmin):
    list_display = ("saved_search", "posting", "alert_number", "sent_at")
    raw_id_fields = ("saved_search", "posting")
