from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.views import is_moderator_only


def site(request: HttpRequest) -> dict:
    return {
        "site_name": settings.SITE_NAME,
        # The employer's prompts (Dashboard, Company, "verify your email to publish") mean
        # nothing to a moderator without a company. Lazy: asked only for a logged-in user.
        "employer_prompts": SimpleLazyObject(lambda: not is_moderator_only(request.user)),
    }
