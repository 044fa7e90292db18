"""Log filters the settings' LOGGING names.

Django logs every view's ``PermissionDenied`` as "Forbidden (Permission denied): /path" on the
``django.request`` logger with the exception's traceback. A refusal is the site working as meant,
not a fault: one line saying who was refused what, and why, is all anyone reading the log needs.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied


class RefusalOnOneLine(logging.Filter):
    """Turns a logged ``PermissionDenied`` into one line with its reason, without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, PermissionDenied):
            reason = str(error).encode("unicode_escape").decode("ascii")  # one line, always
            record.msg = f"{record.getMessage()} ({reason})" if reason else record.getMessage()
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True
