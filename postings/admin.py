from django import forms
from django.contrib import admin
from django.db import models
from django.utils import timezone

from .forms import https_formfield
from .models import Application, Company, Membership, Posting, PostingRevision, ViewCountFlush
from .services import company_verify, posting_approve, posting_save_edit

# Links typed without a scheme are https (Django 6's default, and the only one we want).
HTTPS_URLS = {models.URLField: {"assume_scheme": "https"}}


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    formfield_overrides = HTTPS_URLS
    list_display = ("name", "company_type", "is_verified", "website", "created_at")
    list_filter = ("company_type", "is_verified")
    search_fields = ("name", "slug", "website")
    prepopulated_fields = {"slug": ("name",)}
    actions = ["verify"]

    @admin.action(description="Verify (their waiting postings go live, later ones publish at once)")
    def verify(self, request, queryset) -> None:
        approved = sum(len(company_verify(company=c, by=request.user)) for c in queryset)
        self.message_user(request, f"Verified {queryset.count()}; {approved} postings went live.")

    def save_model(self, request, obj, form, change) -> None:
        newly_verified = change and "is_verified" in form.changed_data and obj.is_verified
        super().save_model(request, obj, form, change)
        if newly_verified:
            company_verify(company=obj, by=request.user)


class PostingAdminForm(forms.ModelForm):
    class Meta:
        model = Posting
        formfield_callback = https_formfield
        fields = "__all__"  # noqa: DJ007 - the admin decides which fields it shows

    def clean(self):
        cleaned = super().clean()
        # Publishing stamps the first publication here, before the model's constraints are
        # validated, exactly as posting_save_edit does for other callers.
        if cleaned.get("status") in Posting.PUBLIC_STATUSES and not cleaned.get("posted_at"):
            now = timezone.now()
            for name in ("posted_at", "updated_at", "last_checked_at"):
                cleaned[name] = cleaned.get(name) or now
        return cleaned


@admin.register(Posting)
class PostingAdmin(admin.ModelAdmin):
    form = PostingAdminForm
    formfield_overrides = HTTPS_URLS
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

    actions = ["approve"]

    @admin.action(description="Approve (waiting for review → live)")
    def approve(self, request, queryset) -> None:
        waiting = queryset.filter(status=Posting.Status.PENDING_REVIEW)
        for posting in waiting:
            posting_approve(posting=posting, by=request.user)
        self.message_user(request, f"{len(waiting)} postings are live.")

    def save_model(self, request, obj, form, change) -> None:
        posting_save_edit(posting=obj)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "company", "role", "joined_at")
    list_filter = ("role",)
    search_fields = ("user__email", "company__name")
    list_select_related = ("user", "company")
    raw_id_fields = ("user", "company")


@admin.register(ViewCountFlush)
class ViewCountFlushAdmin(admin.ModelAdmin):
    list_display = ("batch_id", "postings", "views", "flushed_at")
    readonly_fields = ("batch_id", "postings", "views", "flushed_at")


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    """Moderators see who applied where; the CV itself is for the company's members only."""

    list_display = ("name", "email", "posting", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("name", "email", "posting__title", "posting__company__name")
    list_select_related = ("posting__company",)
    raw_id_fields = ("posting",)
    date_hierarchy = "created_at"
    # The private storage has no URL, and a CV is not the moderators' to read.
    exclude = ("cv",)
    readonly_fields = ("cv_name", "created_at", "status_changed_at")

    def has_add_permission(self, request) -> bool:
        return False  # applications come from candidates, with a CV


@admin.register(PostingRevision)
class PostingRevisionAdmin(admin.ModelAdmin):
    """Read only: an edit is approved or rejected on the moderation pages, which apply it to the
    listing and tell the employer (``moderation:revisions``)."""

    list_display = ("posting", "state", "reopen", "submitted_at", "reviewed_by", "reviewed_at")
    list_filter = ("state", "reopen")
    search_fields = ("posting__title", "posting__company__name")
    list_select_related = ("posting__company", "reviewed_by")
    date_hierarchy = "submitted_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
