from django.contrib import admin

from .models import Company, Posting, ViewCountFlush


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "company_type", "is_verified", "website", "created_at")
    list_filter = ("company_type", "is_verified")
    search_fields = ("name", "slug", "website")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Posting)
class PostingAdmin(admin.ModelAdmin):
    list_display = (
        "title", "company", "status", "workplace", "country", "city",
        "posted_at", "deadline", "view_count", "applicant_count",
    )  # fmt: skip
    list_filter = ("status", "workplace", "employment_type", "seniority", "practice_area")
    search_fields = ("title", "company__name", "city")
    list_select_related = ("company",)
    raw_id_fields = ("company",)
    date_hierarchy = "posted_at"
    readonly_fields = ("view_count", "applicant_count", "apply_click_count", "created_at")


@admin.register(ViewCountFlush)
class ViewCountFlushAdmin(admin.ModelAdmin):
    list_display = ("batch_id", "postings", "views", "flushed_at")
    readonly_fields = ("batch_id", "postings", "views", "flushed_at")
