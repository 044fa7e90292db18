"""On-board applications: what a CV may be, and the writes with their rules.

A candidate applies without an account. The rules kept here, whoever calls:
- a CV is a PDF or a DOCX by its content (never by its name or the browser's word), at most
  ``settings.CV_MAX_BYTES``; a DOCX (a zip) also unpacks to a size a CV can have, judged from
  the zip's directory without unpacking anything (``docx_unpack_problem``);
- one application per email and listing (case-insensitive; the database constraint is the
  backstop for two submissions racing each other);
- only an open listing that takes on-board applications accepts one, checked in the same
  statement that counts it, so a listing closing meanwhile cannot slip one in.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import filetype
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from jobboard.mailbox import email_allowed

from . import tasks
from .models import Application, Posting

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CVKind:
    extension: str
    content_type: str
    label: str


PDF = CVKind(".pdf", "application/pdf", "PDF")
DOCX = CVKind(
    ".docx",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "Word (.docx)",
)
CV_KINDS = {kind.content_type: kind for kind in (PDF, DOCX)}
CV_KIND_BY_EXTENSION = {kind.extension: kind for kind in (PDF, DOCX)}
# What filetype needs to recognise a format; it never reads further.
SIGNATURE_BYTES = 8192


class ApplicationRefused(Exception):
    """The listing does not take this application; the message says why, for the candidate."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class DuplicateApplication(ApplicationRefused):
    def __init__(self, applied_at: datetime | None):
        self.applied_at = applied_at  # not shown: anyone can type an address, and learn no more
        super().__init__(
            "This email address has already applied to this job. The employer has that "
            "application: there is no need to send it again."
        )


def cv_kind(cv: UploadedFile) -> CVKind:
    """The CV's format, from its bytes; raises ValidationError for anything else or too large."""
    limit_mb = settings.CV_MAX_BYTES / (1024 * 1024)
    if cv.size is None or cv.size > settings.CV_MAX_BYTES:
        raise ValidationError(
            f"Your CV is larger than {limit_mb:g} MB. Please send a smaller file.",
            code="too_large",
        )
    if cv.size == 0:
        raise ValidationError("Your CV file is empty.", code="empty")
    cv.seek(0)
    head = cv.read(SIGNATURE_BYTES)
    cv.seek(0)
    guessed = filetype.guess(head)
    mime = guessed.mime if guessed else None
    kind = CV_KINDS.get(mime) if mime else None
    # filetype reads only the first entries' names, and some writers order them differently;
    # either way a DOCX must really be a zip holding a Word document.
    if kind is DOCX or mime == "application/zip":
        kind = _word_document(cv)
    if kind is None:
        raise ValidationError(
            "Your CV must be a PDF or a Word (.docx) document. This file is neither, "
            "whatever its name says.",
            code="file_type",
        )
    return kind


def _word_document(cv: UploadedFile) -> CVKind | None:
    """DOCX for a zip holding a Word document, None for any other zip; raises ValidationError for
    one that would unpack to far more than a CV."""
    try:
        with zipfile.ZipFile(cv) as archive:
            members = archive.infolist()
            directory_at = getattr(archive, "start_dir", cv.size or 0)
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    finally:
        cv.seek(0)
    if not {"[Content_Types].xml", "word/document.xml"} <= {m.filename for m in members}:
        return None
    try:
        problem = docx_unpack_problem(members, packed_bytes=cv.size or 0) or docx_inflate_problem(
            cv, members, directory_at=directory_at
        )
    finally:
        cv.seek(0)
    if problem:
        raise ValidationError(problem, code="docx_unpacks_too_large")
    return DOCX


# What a Word file may unpack to. Its text is XML that packs some 5 to 20 times smaller, its
# pictures not at all: a CV of a few pages and photos unpacks to a few megabytes in a few dozen
# parts. A zip bomb (2 MB unpacking to 2 GB) is refused before the employer's Word, a virus
# scanner or a preview unpacks it.
DOCX_MAX_UNPACKED_BYTES = 50 * 1024 * 1024
DOCX_MAX_RATIO = 100  # unpacked bytes per byte of the file, over the whole file
DOCX_RATIO_FLOOR_BYTES = 1024 * 1024  # unpacking to less than this harms no one, whatever its ratio
DOCX_MAX_MEMBERS = 1000
# A CV holds XML, pictures and fonts; another archive inside it is only there to be unpacked too.
ARCHIVE_EXTENSIONS = (".zip", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".tar", ".zst")
_SAVE_AGAIN = "Please save your CV again in Word, or send it as a PDF."


def docx_unpack_problem(members: list[zipfile.ZipInfo], *, packed_bytes: int) -> str:
    """Why a DOCX with these zip members would unpack to far more than a CV ("" when it would
    not), read from the sizes its directory declares: nothing is unpacked to check.

    (A zip may declare sizes smaller than its contents: ``docx_inflate_problem`` checks what it
    really unpacks to.)"""
    if len(members) > DOCX_MAX_MEMBERS:
        return (
            f"This Word file holds {len(members):,} parts, far more than any CV "
            f"({DOCX_MAX_MEMBERS:,} at most). {_SAVE_AGAIN}"
        )
    for member in members:
        if member.filename.lower().endswith(ARCHIVE_EXTENSIONS):
            return (
                f"This Word file holds another archive ({Path(member.filename).name[:80]}). "
                f"Please send your CV alone, as a PDF or a Word (.docx) document."
            )
    unpacked = sum(member.file_size for member in members)
    too_large = unpacked > DOCX_MAX_UNPACKED_BYTES
    too_packed = unpacked > DOCX_RATIO_FLOOR_BYTES and unpacked > DOCX_MAX_RATIO * max(
        packed_bytes, 1
    )
    if too_large or too_packed:
        return (
            f"This Word file unpacks to {filesizeformat(unpacked)} from "
            f"{filesizeformat(packed_bytes)}: too large to be a CV. {_SAVE_AGAIN}"
        )
    return ""


def docx_inflate_problem(cv, members: list[zipfile.ZipInfo], *, directory_at: int) -> str:
    """Why a DOCX really unpacks to far more than a CV ("" when it does not), found by unpacking
    it, up to ``DOCX_MAX_UNPACKED_BYTES`` and no further.

    The sizes a zip's directory declares may lie: Python and Word stop at them, but readers that
    stream the parts (the local headers and the data itself, as previewers and virus scanners
    do) unpack all there is. So each part's data, up to the next part or the directory, is
    inflated for real; a 2 MB file that would unpack to 2 GB costs some 50 MB of inflating."""
    offsets = sorted({m.header_offset for m in members} | {directory_at})
    unpacked = 0
    for member in members:
        cv.seek(member.header_offset)
        header = cv.read(30)
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            return f"This Word file is damaged. {_SAVE_AGAIN}"
        method, name_length, extra_length = (
            int.from_bytes(header[8:10], "little"),
            int.from_bytes(header[26:28], "little"),
            int.from_bytes(header[28:30], "little"),
        )
        start = member.header_offset + 30 + name_length + extra_length
        end = next((o for o in offsets if o > member.header_offset), directory_at)
        if method == zipfile.ZIP_STORED:
            unpacked += max(0, end - start)
        elif method == zipfile.ZIP_DEFLATED:
            unpacked += _inflated_size(cv, start, end, limit=DOCX_MAX_UNPACKED_BYTES - unpacked)
        else:  # Word writes parts stored or deflated, nothing else
            return f"This Word file is packed in a way Word does not use. {_SAVE_AGAIN}"
        if unpacked > DOCX_MAX_UNPACKED_BYTES:
            return (
                f"This Word file unpacks to more than {filesizeformat(DOCX_MAX_UNPACKED_BYTES)} "
                f"from {filesizeformat(cv.size or 0)}: too large to be a CV. {_SAVE_AGAIN}"
            )
    return ""


def _inflated_size(cv, start: int, end: int, *, limit: int) -> int:
    """How many bytes the deflated data from ``start`` to ``end`` inflates to, counting up to just
    past ``limit``; damaged data counts as what it inflated to before the damage."""
    inflater, size = zlib.decompressobj(-zlib.MAX_WBITS), 0
    cv.seek(start)
    remaining = max(0, end - start)
    try:
        while remaining and not inflater.eof and size <= limit:
            data = cv.read(min(64 * 1024, remaining))
            if not data:
                break
            remaining -= len(data)
            while data and size <= limit:
                size += len(inflater.decompress(data, limit - size + 1))
                data = inflater.unconsumed_tail
    except zlib.error:
        pass
    return size


def clean_file_name(name: str, extension: str, fallback: str = "cv") -> str:
    """The candidate's file name, made safe to show and to offer as a download name.

    Keeps letters (any script), digits, spaces, dots, dashes and underscores of the last path
    part, and ends it with the extension the content really has.
    """
    stem = Path(name.replace("\\", "/")).name
    stem = unicodedata.normalize("NFC", stem)
    if stem.lower().endswith(extension):
        stem = stem[: -len(extension)]
    stem = re.sub(r"[^\w .-]+", "_", stem)
    stem = re.sub(r"\s+", " ", stem).strip(" ._-")[:100]
    return f"{stem or fallback}{extension}"


def application_submit(
    *,
    posting: Posting,
    name: str,
    email: str,
    cv: UploadedFile,
    phone: str = "",
    links: str = "",
    cover_note: str = "",
    site_url: str = "",
) -> Application:
    """Store an application with its CV, count it, and mail the candidate and the company.

    ``site_url`` (e.g. https://jobs.example) makes the links in the emails absolute.
    Raises ApplicationRefused (closed listing, duplicate) or ValidationError (the CV).
    """
    email = email.strip().lower()
    kind = cv_kind(cv)
    previous = previous_application(posting=posting, email=email)
    if previous is not None:
        raise DuplicateApplication(previous.created_at)

    original_name = clean_file_name(cv.name or "", kind.extension)[:200]
    cv.name = f"cv{kind.extension}"  # the stored name is random; this only gives the suffix
    application = Application(
        posting=posting,
        name=name.strip(),
        email=email,
        phone=phone.strip(),
        links=links.strip(),
        cover_note=cover_note.strip(),
        cv=cv,
        cv_name=original_name,
    )
    try:
        with transaction.atomic():
            counted = (
                Posting.objects.open()
                .filter(pk=posting.pk, applies_on_board=True)
                .update(applicant_count=F("applicant_count") + 1)
            )
            if not counted:
                raise ApplicationRefused(refusal_reason(posting))
            application.save()
            tasks.send_application_emails.delay_on_commit(application.pk, site_url)
    except IntegrityError:
        _delete_stored_cv(application)
        previous = previous_application(posting=posting, email=email)
        if previous is None:
            raise
        raise DuplicateApplication(previous.created_at) from None
    except BaseException:
        _delete_stored_cv(application)
        raise
    posting.refresh_from_db(fields=["applicant_count"])
    logger.info("application %s to posting %s", application.pk, posting.pk)
    return application


def previous_application(*, posting: Posting, email: str) -> Application | None:
    return Application.objects.filter(posting=posting, email=email.strip().lower()).first()


def refusal_reason(posting: Posting) -> str:
    """Why a listing takes no application now, in the candidate's words."""
    posting.refresh_from_db(fields=["status", "deadline", "applies_on_board"])
    if posting.status == Posting.Status.CLOSED:
        return "This job is closed: it no longer takes applications."
    if posting.state == "expired":
        return "This job's application deadline has passed: it no longer takes applications."
    if posting.status != Posting.Status.PUBLISHED:
        return "This job is not published, so it does not take applications."
    if not posting.applies_on_board:
        return "This job takes applications on the employer's own site, not here."
    return "This job does not take applications right now."


def _delete_stored_cv(application: Application) -> None:
    """A CV saved before its row failed to commit would be orphaned in private storage."""
    if application.cv and getattr(application.cv, "_committed", False):
        try:
            application.cv.storage.delete(application.cv.name)
        except OSError:
            logger.exception("could not delete the CV of a refused application")


def application_set_status(*, application: Application, status: str, by) -> Application:
    """Move an application to another status (new, reviewed, shortlisted, rejected)."""
    if status not in Application.Status.values:
        raise ValidationError(f"Unknown status {status!r}.", code="invalid_status")
    if status == application.status:
        return application
    application.status = status
    application.status_changed_at = timezone.now()
    application.save(update_fields=["status", "status_changed_at"])
    logger.info("application %s set to %s by user %s", application.pk, status, by.pk)
    return application


def link_lines(links: str) -> list[str]:
    return [line.strip() for line in links.splitlines() if line.strip()]


def web_links(links: str) -> list[str]:
    """The lines safe to make clickable: http(s) only, never javascript: or data:."""
    return [line for line in link_lines(links) if line.lower().startswith(("https://", "http://"))]


# Once per application and email: a retried or duplicated task does not mail anyone twice.
MAILED_MARK_SECONDS = 7 * 24 * 3600


def application_notify(*, application: Application, site_url: str = "") -> int:
    """Confirm the application to the candidate and tell the company's members about it.

    Returns how many messages went out (0 when this ran before).
    """
    posting = application.posting
    context = {
        "application": application,
        "posting": posting,
        "company": posting.company,
        "links": link_lines(application.links),
        "site_name": settings.SITE_NAME,
        "posting_url": site_url + posting.get_absolute_url(),
        "applicants_url": site_url + reverse("employer:applicants", args=[posting.pk]),
    }
    messages, kinds = [], []
    # Anyone can type any address into the form: its mailbox gets a few confirmations a day.
    if _first_time(application, "confirmation") and email_allowed(
        kind="application_confirmation",
        to=application.email,
        per_day=settings.APPLICATION_CONFIRMATIONS_PER_DAY,
    ):
        kinds.append("confirmation")
        messages.append(_email("application_confirmation", context, to=[application.email]))
    if _first_time(application, "received"):
        kinds.append("received")
        members = posting.company.memberships.filter(user__is_active=True).select_related("user")
        # One message per member: colleagues' addresses are not shown to each other.
        messages += [
            _email("application_received", context, to=[m.user.email], reply_to=[application.email])
            for m in members
        ]
    if not messages:
        return 0
    try:
        with get_connection() as connection:
            return connection.send_messages(messages) or 0
    except Exception:
        # Let a retry send them: forget that they were sent.
        cache.delete_many([_mailed_key(application, kind) for kind in kinds])
        raise


def _mailed_key(application: Application, kind: str) -> str:
    return f"application-mailed:{application.pk}:{kind}"


def _first_time(application: Application, kind: str) -> bool:
    return cache.add(_mailed_key(application, kind), 1, timeout=MAILED_MARK_SECONDS)


def _email(template: str, context: dict, **kwargs) -> EmailMessage:
    subject = render_to_string(f"postings/email/{template}_subject.txt", context)
    return EmailMessage(
        subject=" ".join(subject.split()),  # one line: a header cannot hold a newline
        body=render_to_string(f"postings/email/{template}.txt", context),
        **kwargs,
    )
