from django import template

from postings.models import Posting

from ..forms import ReportForm

register = template.Library()


@register.inclusion_tag("reporting/_report_form.html", takes_context=True)
def report_form(context, posting: Posting, form: ReportForm | None = None) -> dict:
    """The "Report this job" form, for the listing's page or a page of its own."""
    return {
        "posting": posting,
        "form": form or ReportForm(posting=posting),
        "csrf_token": context.get("csrf_token"),
    }
