"""django-csp's middleware, with the Content-Security-Policy built once instead of per response.

Building the header from the settings costs django-csp 30-60 µs a response, a good part of what
serving a kept page costs (postings/pagecache.py). Our policy is the same for every response: no
nonces (kept pages are shared between visitors, so a nonce would be reused or mismatched) and no
view changes it. A response that does carry a change of its own (django-csp's ``csp_update``,
``csp_replace``, ``csp_override`` decorators) or a request that asked for a nonce gets django-csp's
own handling, unchanged.
"""

from __future__ import annotations

from functools import cache

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase

# What django-csp's decorators set on a response to change its policy.
PER_RESPONSE = tuple(
    f"_csp_{kind}{suffix}" for kind in ("config", "update", "replace") for suffix in ("", "_ro")
)
DEBUG_PAGES = (404, 500)  # django-csp leaves Django's debug pages alone


# A browser shows an XML document (the sitemaps) with a viewer of its own that styles the tree
# inline; blocked, every visit logs a violation. Our XML is data with no markup of its own, so its
# policy is the site's with inline style allowed, and still no script.
XML_STYLE = {"style-src": ["'unsafe-inline'"]}


@cache
def _policy(report_only: bool, xml: bool = False) -> str:
    return build_policy(replace=XML_STYLE if xml else None, report_only=report_only)


def _is_xml(response: HttpResponseBase) -> bool:
    content_type = response.get("Content-Type", "").split(";", 1)[0].strip().lower()
    return content_type in ("application/xml", "text/xml") or content_type.endswith("+xml")


@receiver(setting_changed)
def _forget_policy(*, setting: str, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _policy.cache_clear()


class CSPMiddleware(BaseCSPMiddleware):
    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        nonce_used = getattr(request, "_csp_nonce", None) is not None
        if nonce_used or any(hasattr(response, name) for name in PER_RESPONSE):
            return super().process_response(request, response)
        if settings.DEBUG and response.status_code in DEBUG_PAGES:
            return response
        xml = _is_xml(response)
        for header, setting, exempt in (
            (HEADER, "CONTENT_SECURITY_POLICY", "_csp_exempt"),
            (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", "_csp_exempt_ro"),
        ):
            policy = _policy(report_only=header == HEADER_REPORT_ONLY, xml=xml)
            if not policy or header in response or getattr(response, exempt, False):
                continue
            excluded = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES")
            if not request.path_info.startswith(tuple(excluded or ())):
                response[header] = policy
        # As django-csp does: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
