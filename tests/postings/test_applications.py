"""On-board applications: the candidate's form, the CV rules, the employer's applicants, CVs and
CSV, and who may open what."""

from __future__ import annotations

import csv
import io
import os
import zipfile
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobboard.celery import app as celery_app
from postings import applications as services
from postings.application_factories import (
    ApplicationFactory,
    RejectedApplicationFactory,
    ReviewedApplicationFactory,
    ShortlistedApplicationFactory,
    docx_bytes,
    pdf_bytes,
)
from postings.application_views import csv_cell
from postings.factories import (
    ClosedPostingFactory,
    CompanyFactory,
    DraftPostingFactory,
    ExpiredPostingFactory,
    PastDeadlinePostingFactory,
    PendingReviewPostingFactory,
    PublishedPostingFactory,
    RemovedPostingFactory,
)
from postings.models import Application, Membership, Posting
from postings.storage import PrivateFileSystemStorage
from postings.tasks import send_application_emails

pytestmark = pytest.mark.django_db

User = get_user_model()
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old binary Office formats
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


# --- Set-up ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def cv_storage(tmp_path, monkeypatch):
    """CVs go to a private directory of this test, never to var/private."""
    storage = PrivateFileSystemStorage(location=tmp_path / "private")
    monkeypatch.setattr(Application._meta.get_field("cv"), "storage", storage)
    return storage


@pytest.fixture(autouse=True)
def _eager_tasks():
    # With REDIS_URL set Celery would queue the emails for a worker; here they run in-process.
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def stored_files(storage: PrivateFileSystemStorage) -> list[str]:
    root = storage.path("")
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]


def make_user(email: str, *, company=None, is_staff: bool = False):
    user = User.objects.create_user(
        email=email, password="correct horse battery staple", is_staff=is_staff
    )
    if company is not None:
        Membership.objects.create(company=company, user=user, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def company():
    return CompanyFactory(name="Acme Robotics", slug="acme-robotics")


@pytest.fixture
def posting(company):
    return PublishedPostingFactory(
        company=company, title="Backend Engineer", applies_on_board=True, apply_url=""
    )


@pytest.fixture
def member(company):
    return make_user("hiring@acme.example", company=company)


@pytest.fixture
def users(company, member):
    """Everyone who might open an employer page, by role."""
    return {
        "anonymous": None,
        "candidate": make_user("candidate@example.com"),
        "other_member": make_user("boss@globex.example", company=CompanyFactory(name="Globex")),
        "member": member,
        "staff": make_user("moderator@jobboard.example", is_staff=True),
    }


def client_for(user, **kwargs) -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER_UA, **kwargs)
    if user is not None:
        client.force_login(user)
    return client


def pdf_upload(name: str = "Ann Example CV.pdf", content: bytes | None = None, **kwargs):
    return SimpleUploadedFile(
        name, pdf_bytes() if content is None else content, content_type="application/pdf", **kwargs
    )


def form_data(**overrides) -> dict:
    data = {
        "name": "Ann Example",
        "email": "Ann@Example.com",
        "phone": "+381 64 123 4567",
        "links": "https://github.com/ann\nann.example/portfolio",
        "cover_note": "I have built search systems for eight years.",
        "cv": pdf_upload(),
        "homepage": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def apply_url(posting) -> str:
    return reverse("postings:apply", args=[posting.pk])


def apply(client, posting, capture, **overrides):
    with capture(execute=True):
        return client.post(apply_url(posting), form_data(**overrides))


# --- The apply form -------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "candidate", "other_member", "member", "staff"])
def test_anyone_may_open_the_apply_form_of_a_listing_taking_applications_here(users, posting, who):
    response = client_for(users[who]).get(apply_url(posting))
    assert response.status_code == 200
    assert "postings/application_form.html" in [t.name for t in response.templates]
    html = response.content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert "Apply for Backend Engineer" in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_a_listing_applied_to_elsewhere_still_redirects_and_counts_the_click(client, without_redis):
    posting = PublishedPostingFactory(apply_url="https://careers.example/jobs/1")
    response = client.get(apply_url(posting), HTTP_USER_AGENT=BROWSER_UA)
    assert response.status_code == 302
    assert response.url == "https://careers.example/jobs/1"
    posting.refresh_from_db()
    assert posting.apply_click_count == 1
    assert posting.applicant_count == 0


def test_a_candidate_applies_with_a_pdf_and_everyone_is_told(
    client, posting, company, member, mailoutbox, django_capture_on_commit_callbacks, cv_storage
):
    colleague = make_user("cto@acme.example", company=company)
    response = apply(client, posting, django_capture_on_commit_callbacks)

    assert response.status_code == 302
    assert response.url == reverse("postings:apply_thanks", args=[posting.pk])
    application = Application.objects.get()
    assert application.posting == posting
    assert application.email == "ann@example.com"  # stored lower-cased
    assert application.name == "Ann Example"
    assert application.links == "https://github.com/ann\nhttps://ann.example/portfolio"
    assert application.cv_name == "Ann Example CV.pdf"
    assert application.cv.name.startswith(f"cvs/{posting.pk}/")
    assert application.cv.name.endswith(".pdf")
    assert "Ann" not in application.cv.name  # the stored name is random
    with application.cv.open("rb") as stored:
        assert stored.read() == pdf_bytes()
    assert application.status == Application.Status.NEW

    posting.refresh_from_db()
    assert posting.applicant_count == 1

    recipients = sorted(tuple(m.to) for m in mailoutbox)
    assert recipients == [("ann@example.com",), ("cto@acme.example",), ("hiring@acme.example",)]
    confirmation = next(m for m in mailoutbox if m.to == ["ann@example.com"])
    assert confirmation.subject == "Your application for Backend Engineer at Acme Robotics"
    assert "Hello Ann Example" in confirmation.body
    assert "http://testserver" + posting.get_absolute_url() in confirmation.body
    notification = next(m for m in mailoutbox if m.to == [colleague.email])
    assert notification.subject == "New applicant for Backend Engineer: Ann Example"
    assert notification.reply_to == ["ann@example.com"]
    assert (
        "http://testserver" + reverse("employer:applicants", args=[posting.pk]) in notification.body
    )


def test_confirmations_to_one_mailbox_are_capped_but_every_employer_is_told(
    company, member, mailoutbox, django_capture_on_commit_callbacks, settings
):
    settings.APPLICATION_CONFIRMATIONS_PER_DAY = 2
    for n, email in enumerate(["ann@gmail.com", "A.nn+x@gmail.com", "ann+y@googlemail.com"]):
        posting = PublishedPostingFactory(company=company, applies_on_board=True, apply_url="")
        client = Client(HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR=f"10.0.3.{n}")
        response = apply(client, posting, django_capture_on_commit_callbacks, email=email)
        assert response.status_code == 302
    assert Application.objects.count() == 3
    to_candidate = [m.to for m in mailoutbox if m.to != ["hiring@acme.example"]]
    assert to_candidate == [["ann@gmail.com"], ["a.nn+x@gmail.com"]]
    assert sum(m.to == ["hiring@acme.example"] for m in mailoutbox) == 3


def test_a_candidate_applies_with_a_docx(client, posting, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("ann.docx", docx_bytes(), content_type="application/octet-stream")
    response = apply(client, posting, django_capture_on_commit_callbacks, cv=upload)
    assert response.status_code == 302
    application = Application.objects.get()
    assert application.cv.name.endswith(".docx")
    assert application.cv_name == "ann.docx"


def test_the_stored_extension_and_download_name_follow_the_content_not_the_name(
    client, posting, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("resume.html", pdf_bytes(), content_type="text/html")
    assert apply(client, posting, django_capture_on_commit_callbacks, cv=upload).status_code == 302
    application = Application.objects.get()
    assert application.cv.name.endswith(".pdf")
    assert application.cv_name == "resume.html.pdf"


def test_the_thank_you_page_names_the_candidate_and_where_the_confirmation_went(
    client, posting, django_capture_on_commit_callbacks
):
    response = apply(client, posting, django_capture_on_commit_callbacks)
    page = client.get(response.url)
    assert page.status_code == 200
    assert "postings/application_thanks.html" in [t.name for t in page.templates]
    html = page.content.decode()
    assert "Thank you, Ann Example" in html
    assert "ann@example.com" in html
    # Someone else opening the same address learns nothing about the candidate.
    other = Client().get(response.url).content.decode()
    assert "Ann Example" not in other
    assert "ann@example.com" not in other
    assert "your application was sent" in other


def test_the_counter_reads_one_applicant_on_the_listing_after_an_application(
    client, posting, django_capture_on_commit_callbacks
):
    apply(client, posting, django_capture_on_commit_callbacks)
    html = client.get(posting.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA).content.decode()
    assert '<span data-stat="applicants">1 applicant</span>' in html
    assert "apply click" not in html


def test_a_listing_sending_candidates_elsewhere_shows_apply_clicks_never_applicants(
    client, without_redis
):
    posting = PublishedPostingFactory(apply_click_count=7, applicant_count=0)
    html = client.get(posting.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA).content.decode()
    assert "7 apply clicks" in html
    assert "applicant" not in html.split('class="posting__stats"')[1].split("</p>")[0]


def test_apply_clicks_on_the_listing_include_those_still_buffered(client, redis_client):
    posting = PublishedPostingFactory(apply_click_count=2)
    client.get(apply_url(posting), HTTP_USER_AGENT=BROWSER_UA)  # buffered in Redis
    html = client.get(posting.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA).content.decode()
    assert "3 apply clicks" in html


def test_a_preview_of_an_external_listing_shows_its_stored_apply_clicks(member, company):
    posting = DraftPostingFactory(company=company, apply_click_count=4)
    response = client_for(member).get(reverse("employer:posting_preview", args=[posting.pk]))
    assert "4 apply clicks" in response.content.decode()


# --- What a CV may be ------------------------------------------------------------------------


def zip_of(**entries: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name.replace("__", "/"), content)
    return out.getvalue()


FAKE_CVS = {
    "png named pdf": ("cv.pdf", PNG, "application/pdf"),
    "exe named pdf": ("cv.pdf", EXE, "application/pdf"),
    "text named pdf": ("cv.pdf", b"Just some text, not a PDF at all.", "application/pdf"),
    "zip named docx": ("cv.docx", zip_of(notes__txt=b"hello"), DOCX_TYPE),
    "word folder without a document": (
        "cv.docx",
        zip_of(**{"[Content_Types].xml": b"<Types/>", "word__styles.xml": b"<w/>"}),
        DOCX_TYPE,
    ),
    "not even a zip named docx": ("cv.docx", b"PK\x03\x04broken", DOCX_TYPE),
    "old binary .doc": ("cv.doc", OLE + b"\x00" * 600, "application/msword"),
}  # fmt: skip


@pytest.mark.parametrize("name, content, content_type", FAKE_CVS.values(), ids=FAKE_CVS.keys())
def test_a_file_that_is_not_really_a_pdf_or_docx_is_refused_and_the_typing_kept(
    client, posting, django_capture_on_commit_callbacks, cv_storage, name, content, content_type
):
    upload = SimpleUploadedFile(name, content, content_type=content_type)
    response = apply(client, posting, django_capture_on_commit_callbacks, cv=upload)
    assert response.status_code == 200
    assert "must be a PDF or a Word (.docx) document" in response.context["form"].errors["cv"][0]
    html = response.content.decode()
    assert 'value="Ann Example"' in html
    assert 'value="Ann@Example.com"' in html
    assert "I have built search systems for eight years." in html
    assert "please choose it again" in html
    assert not Application.objects.exists()
    assert stored_files(cv_storage) == []
    posting.refresh_from_db()
    assert posting.applicant_count == 0


def test_a_cv_over_the_size_limit_is_refused(
    client, posting, settings, django_capture_on_commit_callbacks
):
    too_big = pdf_bytes() + b"%" * (settings.CV_MAX_BYTES - len(pdf_bytes()) + 1)
    response = apply(
        client, posting, django_capture_on_commit_callbacks, cv=pdf_upload(content=too_big)
    )
    assert response.status_code == 200
    assert response.context["form"].errors["cv"] == [
        "Your CV is larger than 5 MB. Please send a smaller file."
    ]
    assert not Application.objects.exists()


def test_a_cv_of_exactly_the_size_limit_is_accepted(
    client, posting, settings, django_capture_on_commit_callbacks
):
    settings.CV_MAX_BYTES = 64 * 1024
    exact = pdf_bytes() + b"%" * (settings.CV_MAX_BYTES - len(pdf_bytes()))
    response = apply(
        client, posting, django_capture_on_commit_callbacks, cv=pdf_upload(content=exact)
    )
    assert response.status_code == 302


def test_an_empty_file_is_refused(client, posting, django_capture_on_commit_callbacks):
    response = apply(
        client, posting, django_capture_on_commit_callbacks, cv=pdf_upload(content=b"")
    )
    assert response.status_code == 200
    assert "cv" in response.context["form"].errors


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Ann CV.pdf", "Ann CV.pdf"),
        ("../../etc/passwd", "passwd.pdf"),
        ("C:\\Users\\ann\\My CV.PDF", "My CV.pdf"),
        ('cv"; filename=evil.exe', "cv_ filename_evil.exe.pdf"),
        ("Jürgen Müller – Lebenslauf.pdf", "Jürgen Müller _ Lebenslauf.pdf"),
        ("<script>.pdf", "script.pdf"),
        ("...", "cv.pdf"),
        ("", "cv.pdf"),
        ("a" * 300 + ".pdf", "a" * 100 + ".pdf"),
    ],
)
def test_file_names_are_made_safe_and_end_with_the_real_extension(name, expected):
    assert services.clean_file_name(name, ".pdf") == expected


def docx_with(document: bytes | None = None, *, unpacked_zeros: int = 0, **extra: bytes) -> bytes:
    """A real Word file (``docx_bytes``'s parts), its document.xml replaced by ``document`` or by
    ``unpacked_zeros`` bytes of zeros (deflated some 1,000 times smaller, streamed: a zip bomb
    built in a fraction of a second), and ``extra`` parts added."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(docx_bytes())) as word,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        for item in word.infolist():
            if item.filename != "word/document.xml" or not (document or unpacked_zeros):
                archive.writestr(item.filename, word.read(item))
        if document is not None:
            archive.writestr("word/document.xml", document)
        elif unpacked_zeros:
            with archive.open("word/document.xml", "w") as member:
                chunk = bytes(1024 * 1024)
                for _ in range(unpacked_zeros // len(chunk)):
                    member.write(chunk)
        for name, content in extra.items():
            archive.writestr(name.replace("__", "/"), content)
    return out.getvalue()


def declaring_small_sizes(content: bytes) -> bytes:
    """The zip with every part declared 1,000 bytes unpacked, in its directory and its local
    headers: readers that trust the declared sizes see a small file; its data is unchanged."""
    data = bytearray(content)
    for signature, size_at in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        at = data.find(signature)
        while at >= 0:
            data[at + size_at : at + size_at + 4] = (1000).to_bytes(4, "little")
            at = data.find(signature, at + 4)
    return bytes(data)


MB = 1024 * 1024
DOCX_BOMBS = {  # built when a test asks: a few tenths of a second, not at every collection
    "64 MB of zeros in 64 KB": (lambda: docx_with(unpacked_zeros=64 * MB), "unpacks to 64.0"),
    "5 MB of zeros: 1000 to 1": (lambda: docx_with(unpacked_zeros=5 * MB), "unpacks to 5.0"),
    "64 MB of zeros declared as 1 KB": (
        lambda: declaring_small_sizes(docx_with(unpacked_zeros=64 * MB)),
        "unpacks to more than 50.0 MB",
    ),
    "1,001 parts": (
        lambda: docx_with(**{f"word__media__p{i}.xml": b"<p/>" for i in range(1001)}),
        "holds 1,004 parts",
    ),
    "a zip inside": (
        lambda: docx_with(**{"word__media__more.zip": zip_of(a=b"a")}),
        "holds another archive",
    ),
}


@pytest.mark.parametrize("build, message", DOCX_BOMBS.values(), ids=DOCX_BOMBS.keys())
def test_a_docx_that_would_unpack_to_far_more_than_a_cv_is_refused_and_the_typing_kept(
    client, posting, django_capture_on_commit_callbacks, cv_storage, build, message
):
    upload = SimpleUploadedFile("Ann CV.docx", build(), content_type=DOCX_TYPE)
    response = apply(client, posting, django_capture_on_commit_callbacks, cv=upload)
    assert response.status_code == 200
    (error,) = response.context["form"].errors["cv"]
    assert message in error.replace("\xa0", " ")
    assert "Please" in error
    html = response.content.decode()
    assert 'value="Ann Example"' in html
    assert "I have built search systems for eight years." in html
    assert not Application.objects.exists()
    assert stored_files(cv_storage) == []


def test_a_docx_with_pictures_that_do_not_pack_is_accepted(
    client, posting, django_capture_on_commit_callbacks
):
    photo = os.urandom(2 * MB)  # a JPEG packs no smaller: unpacked and packed sizes are alike
    text = b"<w:document>" + b"<w:p>Built search systems.</w:p>" * 20_000 + b"</w:document>"
    content = docx_with(text, word__media__image1_jpeg=photo)
    upload = SimpleUploadedFile("Ann CV.docx", content, content_type=DOCX_TYPE)
    assert apply(client, posting, django_capture_on_commit_callbacks, cv=upload).status_code == 302


@pytest.mark.parametrize(
    "parts, unpacked, packed, refused",
    [
        (1000, 1000, 100, False),  # as many parts as a CV may have
        (1001, 1000, 100, True),
        (3, 50 * MB, 5 * MB, False),  # as large as a CV may unpack to
        (3, 50 * MB + 1, 5 * MB, True),
        (3, MB, 1, False),  # a megabyte from a byte: absurd, yet harmless
        (3, MB + 1, MB // 100, True),  # over a hundred to one
        (3, 2_000_000, 20_000, False),  # a hundred to one
    ],
)
def test_docx_unpack_limits(parts, unpacked, packed, refused):
    members = [zipfile.ZipInfo(f"word/part{i}.xml") for i in range(parts)]
    members[0].file_size = unpacked
    assert bool(services.docx_unpack_problem(members, packed_bytes=packed)) is refused


class NamedUpload(io.BytesIO):
    """A file as a browser sends it, under a name ``SimpleUploadedFile`` would refuse or cut."""

    def __init__(self, name: str, content: bytes) -> None:
        super().__init__(content)
        self.name = name


@pytest.mark.parametrize(
    "name, shown",
    [
        ("a" * 995 + ".docx", "a" * 100 + ".docx"),
        ("Лебенслауф" * 100 + ".docx", "Лебенслауф" * 10 + ".docx"),  # 2 bytes a letter
        ("🦉" * 1000 + ".docx", "cv.docx"),  # 4,000 bytes; no letters or digits to keep
        ("CV." + "x" * 1000, "CV." + "x" * 97 + ".docx"),  # no extension but a long tail
    ],
    ids=["ascii", "cyrillic", "emoji", "long-tail"],
)
def test_a_cv_with_a_thousand_character_name_is_accepted_under_a_shorter_one(
    client, posting, member, django_capture_on_commit_callbacks, name, shown
):
    cv = docx_bytes()
    upload = NamedUpload(name, cv)
    response = apply(client, posting, django_capture_on_commit_callbacks, cv=upload)
    assert response.status_code == 302
    application = Application.objects.get()
    assert application.cv_name == shown
    download = client_for(member).get(cv_url(application))
    assert b"".join(download.streaming_content) == cv


def test_a_long_cv_name_with_another_mistake_gives_the_form_back_with_the_typing(
    client, posting, django_capture_on_commit_callbacks
):
    upload = NamedUpload("a" * 995 + ".docx", docx_bytes())
    response = apply(client, posting, django_capture_on_commit_callbacks, cv=upload, email="ann@")
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"email"}
    html = response.content.decode()
    assert 'value="Ann Example"' in html
    assert 'value="ann@"' in html
    assert "I have built search systems for eight years." in html


def test_a_cv_spooled_to_disk_under_a_name_with_a_long_tail_is_accepted(
    client, posting, settings, django_capture_on_commit_callbacks
):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # spooled to a temporary file, as a large CV is
    upload = NamedUpload("CV." + "x" * 1000, docx_bytes())
    response = apply(client, posting, django_capture_on_commit_callbacks, cv=upload)
    assert response.status_code == 302
    assert Application.objects.get().cv_name == "CV." + "x" * 97 + ".docx"


def test_a_file_name_past_what_any_system_allows_gets_a_page_saying_what_to_do(
    client, posting, django_capture_on_commit_callbacks
):
    upload = NamedUpload("b" * 9000 + ".docx", docx_bytes())  # 9 KB of part headers: too many
    response = apply(client, posting, django_capture_on_commit_callbacks, cv=upload)
    assert response.status_code == 400
    assert "rename the file and send the form again" in response.content.decode()
    assert not Application.objects.exists()


@pytest.mark.parametrize("name", ["..", ".", "\x7f"])
def test_a_cv_whose_name_is_no_name_is_accepted_as_unnamed(
    client, posting, django_capture_on_commit_callbacks, name
):
    upload = NamedUpload(name, docx_bytes())
    response = apply(client, posting, django_capture_on_commit_callbacks, cv=upload)
    assert response.status_code == 302
    assert Application.objects.get().cv_name == "unnamed.docx"


def test_a_cv_named_like_a_windows_device_is_kept_as_is_and_downloads(
    client, posting, member, django_capture_on_commit_callbacks
):
    cv = docx_bytes()
    upload = NamedUpload("CON.docx", cv)
    response = apply(client, posting, django_capture_on_commit_callbacks, cv=upload)
    assert response.status_code == 302
    application = Application.objects.get()
    assert application.cv_name == "CON.docx"
    assert (
        "CON.docx"
        in client_for(member)
        .get(reverse("employer:applicants", args=[posting.pk]))
        .content.decode()
    )
    download = client_for(member).get(cv_url(application))
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="CON.docx"'
    assert b"".join(download.streaming_content) == cv


# --- The other fields ---------------------------------------------------------------------------


def test_missing_fields_are_named_and_nothing_is_stored(
    client, posting, django_capture_on_commit_callbacks
):
    response = apply(
        client, posting, django_capture_on_commit_callbacks, email="", cv=None, name="Ann"
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {"email", "cv"}
    assert 'value="Ann"' in response.content.decode()
    assert not Application.objects.exists()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("email", "not-an-email", "valid email"),
        ("phone", "call me maybe", "phone number"),
        ("name", "Ann\r\nBcc: everyone@example.com", "single line"),
        ("name", "Ann\u2028Bcc: everyone@example.com", "single line"),
        ("name", "Ann\x85Bcc: everyone@example.com", "single line"),
        ("name", "Ann\x9b", "single line"),
        ("name", "Eve\u202eed.lap", "single line"),
        ("name", "\u200b\u200c\ufeff", "letters"),  # only zero-width: an invisible applicant
        ("name", "\u3164 \u2800", "letters"),  # a Hangul filler and a blank braille cell
        ("phone", "+381 64\u2028123 4567", "single line"),
        ("links", "javascript:alert(1)", "not a web address"),
        ("links", "\n".join(f"https://example.com/{i}" for i in range(6)), "at most 5 links"),
        ("cover_note", "x" * 4001, "at most 4000 characters"),
    ],
)
def test_bad_values_are_explained(
    client, posting, django_capture_on_commit_callbacks, field, value, message
):
    response = apply(client, posting, django_capture_on_commit_callbacks, **{field: value})
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not Application.objects.exists()


def test_html_typed_in_fields_is_shown_as_text(
    client, posting, member, django_capture_on_commit_callbacks
):
    script = "<script>alert('x')</script>"
    # On the form shown again after an error.
    html = apply(
        client, posting, django_capture_on_commit_callbacks, name=f"Ann {script}", cv=None
    ).content.decode()
    assert script not in html
    assert "&lt;script&gt;" in html
    # And to the employer, after a real application.
    apply(
        client,
        posting,
        django_capture_on_commit_callbacks,
        name=f"Ann {script}",
        cover_note=f"Hello {script}",
    )
    page = client_for(member).get(reverse("employer:applicants", args=[posting.pk]))
    html = page.content.decode()
    assert script not in html
    assert "Ann &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html  # MarkupSafe escaping


# --- One application per email, and only to open listings -----------------------------------------


def test_a_second_application_from_the_same_email_in_any_case_is_refused_kindly(
    client, posting, django_capture_on_commit_callbacks, cv_storage, mailoutbox
):
    first = ApplicationFactory(posting=posting, email="ann@example.com")
    first.created_at = timezone.make_aware(timezone.datetime(2026, 3, 4, 12, 0))
    Application.objects.filter(pk=first.pk).update(created_at=first.created_at)
    files_before = stored_files(cv_storage)

    response = apply(client, posting, django_capture_on_commit_callbacks, email="ANN@example.COM")

    assert response.status_code == 200
    html = response.content.decode()
    assert "This email address has already applied to this job." in html
    assert "March 4" not in html  # nothing more to whoever typed someone else's address
    assert 'value="ANN@example.COM"' in html
    assert Application.objects.count() == 1
    assert stored_files(cv_storage) == files_before
    posting.refresh_from_db()
    assert posting.applicant_count == 1
    assert mailoutbox == []


def test_the_same_email_may_apply_to_another_listing(
    client, posting, django_capture_on_commit_callbacks
):
    ApplicationFactory(email="ann@example.com")
    assert apply(client, posting, django_capture_on_commit_callbacks).status_code == 302


def test_two_applications_racing_past_the_check_meet_the_constraint_not_a_500(
    client, posting, django_capture_on_commit_callbacks, monkeypatch, cv_storage
):
    """The second of two simultaneous submissions passes the look-up, then hits the constraint."""
    existing = ApplicationFactory(posting=posting, email="ann@example.com")
    files_before = stored_files(cv_storage)
    answers = iter([None, existing])  # not found before the insert; found after it failed
    monkeypatch.setattr(services, "previous_application", lambda **kwargs: next(answers))

    response = apply(client, posting, django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert "already applied to this job" in response.content.decode()
    assert Application.objects.count() == 1
    assert stored_files(cv_storage) == files_before  # the refused CV was removed again
    posting.refresh_from_db()
    assert posting.applicant_count == 1  # the second one's count was rolled back


@pytest.mark.parametrize(
    "factory, reason",
    [
        (ClosedPostingFactory, "This job is closed"),
        (ExpiredPostingFactory, "deadline has passed"),
        (PastDeadlinePostingFactory, "deadline has passed"),
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_ended_listings_refuse_applications_with_a_clear_message(
    client, factory, reason, method, django_capture_on_commit_callbacks
):
    posting = factory(applies_on_board=True, apply_url="")
    with django_capture_on_commit_callbacks(execute=True):
        response = getattr(client, method)(apply_url(posting), form_data(), follow=True)
    assert response.redirect_chain[0][0] == posting.get_absolute_url()
    assert reason in response.content.decode()
    assert not Application.objects.exists()


@pytest.mark.parametrize(
    "factory", [DraftPostingFactory, PendingReviewPostingFactory, RemovedPostingFactory]
)
def test_unpublished_listings_have_no_apply_page(client, factory):
    posting = factory(applies_on_board=True, apply_url="")
    assert client.get(apply_url(posting)).status_code == 404
    assert client.post(apply_url(posting), form_data()).status_code == 404


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"status": Posting.Status.CLOSED}, "This job is closed"),
        ({"deadline": timezone.now() - timedelta(minutes=1)}, "deadline has passed"),
        ({"status": Posting.Status.DRAFT, "posted_at": None}, "not published"),
        ({"applies_on_board": False}, "employer's own site"),
    ],
)
def test_the_service_refuses_a_listing_that_stopped_taking_applications_meanwhile(
    posting, change, reason, cv_storage
):
    Posting.objects.filter(pk=posting.pk).update(**change)  # the caller's copy still looks open
    with pytest.raises(services.ApplicationRefused, match=reason):
        services.application_submit(
            posting=posting, name="Ann", email="ann@example.com", cv=pdf_upload()
        )
    assert not Application.objects.exists()
    assert stored_files(cv_storage) == []


# --- Abuse --------------------------------------------------------------------------------------


def test_a_filled_honeypot_looks_like_success_but_stores_and_sends_nothing(
    client, posting, django_capture_on_commit_callbacks, mailoutbox, cv_storage
):
    response = apply(client, posting, django_capture_on_commit_callbacks, homepage="http://spam")
    assert response.status_code == 302
    assert response.url == reverse("postings:apply_thanks", args=[posting.pk])
    assert not Application.objects.exists()
    assert stored_files(cv_storage) == []
    assert mailoutbox == []


def test_the_honeypot_is_hidden_from_people(client, posting):
    html = client.get(apply_url(posting)).content.decode()
    assert '<div class="application__hp" aria-hidden="true">' in html
    assert 'tabindex="-1"' in html


def test_more_than_ten_posts_an_hour_from_one_address_are_refused_keeping_the_typing(
    posting, django_capture_on_commit_callbacks
):
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(10):
        response = apply(client, posting, django_capture_on_commit_callbacks, email="", cv=None)
        assert response.status_code == 200
    response = apply(client, posting, django_capture_on_commit_callbacks)
    assert response.status_code == 429
    html = response.content.decode()
    assert "Too many applications were sent from your network" in html
    assert 'value="Ann Example"' in html
    assert not Application.objects.exists()
    # Another address is not held back, and a GET of the form never is.
    assert Client(REMOTE_ADDR="203.0.113.8").get(apply_url(posting)).status_code == 200
    assert client.get(apply_url(posting)).status_code == 200
    other = Client(REMOTE_ADDR="203.0.113.8")
    assert apply(other, posting, django_capture_on_commit_callbacks).status_code == 302


def test_the_rate_limit_sees_the_visitor_behind_our_proxy(
    posting, settings, django_capture_on_commit_callbacks
):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.1"
    spammer = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.1")
    for _ in range(10):
        apply(spammer, posting, django_capture_on_commit_callbacks, cv=None)
    assert apply(spammer, posting, django_capture_on_commit_callbacks).status_code == 429
    # A different visitor through the same proxy applies normally.
    candidate = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.2")
    assert apply(candidate, posting, django_capture_on_commit_callbacks).status_code == 302


def test_the_apply_form_needs_the_csrf_token(posting):
    client = Client(enforce_csrf_checks=True)
    assert client.post(apply_url(posting), form_data()).status_code == 403
    assert not Application.objects.exists()


# --- Emails -------------------------------------------------------------------------------------


def test_the_email_task_sends_each_message_once_even_when_run_twice(member, mailoutbox):
    application = ApplicationFactory(posting__company=member.memberships.get().company)
    assert send_application_emails(application.pk, "https://jobs.example") == 2
    assert send_application_emails(application.pk, "https://jobs.example") == 0
    assert len(mailoutbox) == 2
    assert "https://jobs.example/jobs/" in mailoutbox[0].body


def test_the_email_task_of_a_deleted_application_does_nothing(mailoutbox):
    assert send_application_emails(123456) == 0
    assert mailoutbox == []


def test_emails_are_plain_text_with_ampersands_intact(posting, mailoutbox):
    posting.company.name = "Smith & Sons"
    posting.company.save()
    application = ApplicationFactory(posting=posting, name="Ann O'Neil")
    send_application_emails(application.pk)
    assert all("&amp;" not in m.body and "&#x27;" not in m.body for m in mailoutbox)
    assert "Smith & Sons" in mailoutbox[0].subject + mailoutbox[0].body


# --- The employer's applicants page ---------------------------------------------------------------


EMPLOYER_PAGES = ["applicants", "applicants_csv"]


@pytest.mark.parametrize("page", EMPLOYER_PAGES)
def test_anonymous_visitors_are_sent_to_log_in(client, posting, page):
    url = reverse(f"employer:{page}", args=[posting.pk])
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login") + "?next=")


@pytest.mark.parametrize("page", EMPLOYER_PAGES)
@pytest.mark.parametrize("who", ["candidate", "staff"])
def test_users_without_a_company_are_asked_to_create_one(users, posting, page, who):
    response = client_for(users[who]).get(reverse(f"employer:{page}", args=[posting.pk]))
    assert response.status_code == 302
    assert response.url == reverse("accounts:company_create")


@pytest.mark.parametrize("page", EMPLOYER_PAGES)
def test_another_company_cannot_tell_the_posting_exists(users, posting, page):
    ApplicationFactory(posting=posting)
    response = client_for(users["other_member"]).get(reverse(f"employer:{page}", args=[posting.pk]))
    assert response.status_code == 404


def test_members_see_their_listings_applicants_with_counts_per_status(posting, member):
    ApplicationFactory(posting=posting, name="Ann New")
    ApplicationFactory(posting=posting, name="Ben New")
    ReviewedApplicationFactory(posting=posting, name="Cai Reviewed")
    ShortlistedApplicationFactory(posting=posting, name="Dee Shortlisted")
    RejectedApplicationFactory(posting=posting, name="Eve Rejected")
    ApplicationFactory(name="Zed Elsewhere")  # another listing's

    client = client_for(member)
    response = client.get(reverse("employer:applicants", args=[posting.pk]))
    assert response.status_code == 200
    assert "postings/application_list.html" in [t.name for t in response.templates]
    html = response.content.decode()
    for name in ("Ann New", "Ben New", "Cai Reviewed", "Dee Shortlisted", "Eve Rejected"):
        assert name in html
    assert "Zed Elsewhere" not in html
    assert response.context["total"] == 5
    assert response.context["statuses"] == [
        ("new", "New", 2),
        ("reviewed", "Reviewed", 1),
        ("shortlisted", "Shortlisted", 1),
        ("rejected", "Rejected", 1),
    ]
    assert reverse("employer:application_cv", args=[posting.applications.first().pk]) in html
    assert reverse("employer:dashboard") in html

    shortlisted = client.get(reverse("employer:applicants", args=[posting.pk]), {"status": "new"})
    names = [a.name for a in shortlisted.context["applications"]]
    assert sorted(names) == ["Ann New", "Ben New"]
    assert 'href="?status=new" aria-current="page"' in shortlisted.content.decode()


def test_an_unknown_status_filter_shows_everyone(posting, member):
    ApplicationFactory(posting=posting)
    response = client_for(member).get(
        reverse("employer:applicants", args=[posting.pk]), {"status": "'; DROP TABLE"}
    )
    assert response.status_code == 200
    assert len(response.context["applications"]) == 1


def test_a_listing_without_applicants_says_so(posting, member):
    response = client_for(member).get(reverse("employer:applicants", args=[posting.pk]))
    assert "No applicants yet" in response.content.decode()


def test_only_web_links_are_clickable(posting, member):
    ApplicationFactory(posting=posting, links="https://github.com/ann\njavascript:alert(1)")
    html = client_for(member).get(reverse("employer:applicants", args=[posting.pk])).content
    assert b'href="https://github.com/ann"' in html
    assert b"javascript:" not in html


# --- Status changes -------------------------------------------------------------------------------


def status_url(application) -> str:
    return reverse("employer:application_status", args=[application.pk])


def test_a_member_moves_an_application_to_shortlisted(posting, member):
    application = ApplicationFactory(posting=posting, name="Ann")
    response = client_for(member).post(
        status_url(application), {"status": "shortlisted", "filter": "new"}, follow=True
    )
    assert response.redirect_chain[-1][0] == (
        reverse("employer:applicants", args=[posting.pk]) + "?status=new"
    )
    assert "Ann is now marked Shortlisted." in response.content.decode()
    application.refresh_from_db()
    assert application.status == Application.Status.SHORTLISTED
    assert application.status_changed_at is not None


def test_an_unknown_status_changes_nothing(posting, member):
    application = ApplicationFactory(posting=posting)
    response = client_for(member).post(status_url(application), {"status": "hired"}, follow=True)
    assert "Choose one of the statuses" in response.content.decode()
    application.refresh_from_db()
    assert application.status == Application.Status.NEW


@pytest.mark.parametrize("who, expected", [("other_member", 404)])
def test_another_company_cannot_change_a_status(users, posting, who, expected):
    application = ApplicationFactory(posting=posting)
    response = client_for(users[who]).post(status_url(application), {"status": "rejected"})
    assert response.status_code == expected
    application.refresh_from_db()
    assert application.status == Application.Status.NEW


def test_status_changes_need_a_post_with_the_csrf_token(posting, member):
    application = ApplicationFactory(posting=posting)
    assert client_for(member).get(status_url(application)).status_code == 405
    strict = client_for(member, enforce_csrf_checks=True)
    assert strict.post(status_url(application), {"status": "rejected"}).status_code == 403
    application.refresh_from_db()
    assert application.status == Application.Status.NEW


@pytest.mark.parametrize("who", ["anonymous", "candidate", "staff"])
def test_status_changes_by_non_members_are_refused(users, posting, who):
    application = ApplicationFactory(posting=posting)
    response = client_for(users[who]).post(status_url(application), {"status": "rejected"})
    assert response.status_code == 302  # to log in, or to create a company first
    application.refresh_from_db()
    assert application.status == Application.Status.NEW


def test_setting_the_same_status_again_keeps_its_time(member):
    application = ReviewedApplicationFactory()
    before = application.status_changed_at
    services.application_set_status(application=application, status="reviewed", by=member)
    assert application.status_changed_at == before
    with pytest.raises(ValidationError):
        services.application_set_status(application=application, status="hired", by=member)


# --- CV downloads ---------------------------------------------------------------------------------


def cv_url(application) -> str:
    return reverse("employer:application_cv", args=[application.pk])


def test_a_member_downloads_a_cv_as_an_attachment_that_is_never_cached_or_sniffed(posting, member):
    application = ApplicationFactory(posting=posting, cv_name='Ann "Final" CV.pdf')
    response = client_for(member).get(cv_url(application))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="Ann _Final_ CV.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content) == pdf_bytes(application.name)


def test_a_docx_cv_downloads_as_a_word_document_with_a_unicode_name(
    posting, member, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("Jürgen Lebenslauf.docx", docx_bytes())
    apply(Client(), posting, django_capture_on_commit_callbacks, cv=upload)
    response = client_for(member).get(cv_url(Application.objects.get()))
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert response["Content-Disposition"] == (
        "attachment; filename*=utf-8''J%C3%BCrgen%20Lebenslauf.docx"
    )


def test_anonymous_visitors_are_sent_to_log_in_for_a_cv(client, posting):
    application = ApplicationFactory(posting=posting)
    response = client.get(cv_url(application))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login") + "?next=")


@pytest.mark.parametrize("who", ["candidate", "other_member", "staff"])
def test_nobody_but_the_companys_members_gets_a_cv(users, posting, who):
    application = ApplicationFactory(posting=posting)
    assert client_for(users[who]).get(cv_url(application)).status_code == 404


def test_a_cv_missing_from_storage_is_a_404_not_a_500(posting, member, cv_storage):
    application = ApplicationFactory(posting=posting)
    cv_storage.delete(application.cv.name)
    assert client_for(member).get(cv_url(application)).status_code == 404


def test_cvs_are_stored_outside_the_public_media_and_no_address_serves_them(
    posting, settings, cv_storage, users
):
    application = ApplicationFactory(posting=posting)
    path = cv_storage.path(application.cv.name)
    assert not path.startswith(str(settings.MEDIA_ROOT))
    for who in ("anonymous", "member"):
        client = client_for(users[who])
        assert client.get(f"{settings.MEDIA_URL}{application.cv.name}").status_code == 404
    with pytest.raises(ValueError, match="no URL"):
        application.cv.url  # noqa: B018 - the private storage refuses to make one


# --- CSV export -----------------------------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    text = response.content.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_members_export_their_applicants_as_csv(posting, member):
    ApplicationFactory(
        posting=posting,
        name="Ann Example",
        email="ann@example.com",
        phone="555 0100",
        links="https://github.com/ann\nhttps://ann.example",
        cover_note="Line one\nline two, with a comma",
        cv_name="Ann CV.pdf",
    )
    ReviewedApplicationFactory(posting=posting, name="Ben Reviewed")

    response = client_for(member).get(reverse("employer:applicants_csv", args=[posting.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="applicants-{posting.pk}-{posting.slug}.csv"'
    )
    assert response["Cache-Control"] == "private, no-store"
    assert response.content.startswith("\ufeff".encode())
    rows = read_csv(response)
    assert rows[0] == [
        "Applied at", "Name", "Email", "Phone", "Links", "Status", "Cover note", "CV file",
    ]  # fmt: skip
    assert len(rows) == 3
    ann = next(row for row in rows if row[1] == "Ann Example")
    assert ann[2:] == [
        "ann@example.com", "555 0100", "https://github.com/ann https://ann.example", "New",
        "Line one\nline two, with a comma", "Ann CV.pdf",
    ]  # fmt: skip

    reviewed = client_for(member).get(
        reverse("employer:applicants_csv", args=[posting.pk]), {"status": "reviewed"}
    )
    assert [row[1] for row in read_csv(reviewed)[1:]] == ["Ben Reviewed"]
    assert "-reviewed.csv" in reviewed["Content-Disposition"]


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_quoted(posting, member):
    ApplicationFactory(
        posting=posting,
        name='=HYPERLINK("https://evil.example","Click")',
        phone="+1 555 0100",
        cover_note="@SUM(A1:A9)",
        cv_name="-2+3.pdf",
        links="",
    )
    row = read_csv(client_for(member).get(reverse("employer:applicants_csv", args=[posting.pk])))[1]
    assert row[1] == '\'=HYPERLINK("https://evil.example","Click")'
    assert row[3] == "'+1 555 0100"
    assert row[6] == "'@SUM(A1:A9)"
    assert row[7] == "'-2+3.pdf"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"),
        ("\tx", "'\tx"), ("\rx", "'\rx"), ("Ann", "Ann"), ("", ""), (None, ""), ("a=b", "a=b"),
    ],
)  # fmt: skip
def test_csv_cell_guard(value, expected):
    assert csv_cell(value) == expected


# --- Admin ----------------------------------------------------------------------------------------


def test_the_admin_lists_and_opens_applications_without_exposing_the_cv(posting):
    admin_user = User.objects.create_superuser(email="admin@example.com", password="x" * 20)
    application = ApplicationFactory(posting=posting, name="Ann Example")
    client = client_for(admin_user)
    changelist = client.get(reverse("admin:postings_application_changelist"))
    assert changelist.status_code == 200
    assert "Ann Example" in changelist.content.decode()
    change = client.get(reverse("admin:postings_application_change", args=[application.pk]))
    assert change.status_code == 200
    assert application.cv.name not in change.content.decode()
    assert client.get(reverse("admin:postings_application_add")).status_code == 403
