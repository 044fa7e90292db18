"""Who may act for a company. Employer views use these; every lookup of a posting or an
application goes through the user's own companies, so a guessed id of another company's row is
simply not found (404), never forbidden (which would confirm it exists)."""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest
from django.shortcuts import redirect

from .models import Company


def company_of(user) -> Company | None:
    """The company a user acts for (the first they joined), or None."""
    if not user.is_authenticated:
        return None
    return Company.objects.of_member(user).order_by("memberships__joined_at").first()


class EmployerRequiredMixin(LoginRequiredMixin):
    """Logged in and a member of a company; sets ``self.company``.

    A logged-in user without a company is sent to create one first.
    """

    company: Company

    def dispatch(self, request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        company = company_of(request.user)
        if company is None:
            return redirect("accounts:company_create")
        self.company = company
        return super().dispatch(request, *args, **kwargs)
