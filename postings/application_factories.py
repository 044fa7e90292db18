"""Factories for on-board applications, and tiny but real CV files to attach to them."""

from __future__ import annotations

import io
import zipfile

import factory
from django.core.files.base import ContentFile
from django.db.models import F
from django.utils import timezone

from .factories import PublishedPostingFactory
from .models import Application, Posting


def pdf_bytes(text: str = "Curriculum vitae") -> bytes:
    """A minimal one-page PDF that viewers open (header, catalog, page, xref, trailer)."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def docx_bytes(text: str = "Curriculum vitae") -> bytes:
    """A minimal Word document: the three parts Word needs, zipped."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
            "</Types>",
        )
        archive.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/officeDocument" Target="word/document.xml"/>'
            "</Relationships>",
        )
        archive.writestr(
            "word/document.xml",
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            f"<w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>",
        )
    return out.getvalue()


class ApplicationFactory(factory.django.DjangoModelFactory):
    """A new application with a real PDF CV in private storage."""

    class Meta:
        model = Application
        skip_postgeneration_save = True

    posting = factory.SubFactory(PublishedPostingFactory, applies_on_board=True, apply_url="")
    name = factory.Faker("name")
    email = factory.LazyAttributeSequence(
        lambda o, n: f"{o.name.split()[0].lower()}.{n}@example.com"
    )
    phone = factory.Faker("numerify", text="+1 ### ### ####")
    links = factory.LazyAttribute(lambda o: f"https://github.com/{o.name.split()[0].lower()}")
    cover_note = factory.Faker("paragraph", nb_sentences=4)
    cv_name = factory.LazyAttribute(lambda o: f"{o.name} CV.pdf")
    cv = factory.LazyAttribute(lambda o: ContentFile(pdf_bytes(o.name), name="cv.pdf"))
    status = Application.Status.NEW

    @factory.post_generation
    def counted(obj, create, extracted, **kwargs):
        """Like a real application, it counts on its listing's applicant counter."""
        if create:
            Posting.objects.filter(pk=obj.posting_id).update(
                applicant_count=F("applicant_count") + 1
            )
            obj.posting.refresh_from_db(fields=["applicant_count"])


class ReviewedApplicationFactory(ApplicationFactory):
    status = Application.Status.REVIEWED
    status_changed_at = factory.LazyFunction(timezone.now)


class ShortlistedApplicationFactory(ReviewedApplicationFactory):
    status = Application.Status.SHORTLISTED


class RejectedApplicationFactory(ReviewedApplicationFactory):
    status = Application.Status.REJECTED
