from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject, lazy
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.views import is_moderator_only
from jobboard.csrf import get_token


def site(request: HttpRequest) -> dict:
    return {
        "site_name": settings.SITE_NAME,
        # The employer's prompts (Dashboard, Company, "verify your email to publish") mean
        # nothing to a moderator without a company. Lazy: asked only for a logged-in user.
        "employer_prompts": SimpleLazyObject(lambda: not is_moderator_only(request.user)),
        # Django's Jinja2 ``csrf_input`` (the same field, masked afresh where it is shown) with
        # the token drawn in one system call (``jobboard.csrf``), not sixty-four.
        "csrf_input": _csrf_input_lazy(request),
    }


def _csrf_input(request: HttpRequest) -> SafeString:
    return format_html(
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">', get_token(request)
    )


_csrf_input_lazy = lazy(_csrf_input, SafeString, str)
