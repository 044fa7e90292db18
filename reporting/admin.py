from django.contrib import admin

from .models import DigestState, ModerationAction, Report


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ("posting", "reason", "status", "created_at", "handled_by", "handled_at")
    list_filter = ("reason", "status", "created_at")
    search_fields = ("posting__title", "posting__company__name", "details", "email")
    list_select_related = ("posting", "handled_by")
    raw_id_fields = ("posting", "duplicate_of")
    readonly_fields = ("reporter", "created_at")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # reports are never deleted; dismiss or resolve them instead


@admin.register(ModerationAction)
class ModerationActionAdmin(admin.ModelAdmin):
    """The audit log, read-only: rows are only ever added, by moderators and the safety net."""

    list_display = ("created_at", "kind", "actor", "posting", "company", "note")
    list_filter = ("kind", "created_at")
    search_fields = ("note", "posting__title", "company__name", "actor__email")
    list_select_related = ("actor", "posting", "company")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DigestState)
class DigestStateAdmin(admin.ModelAdmin):
    list_display = ("last_sent_at", "last_report_id")
