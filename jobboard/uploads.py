"""File uploads parsed by Django's own multipart parser, minus three ways it fails a visitor.

A file's name as the browser sends it is only a label here: forms store files under names of
their own. Yet Django's parser
- drops a file named "." or ".." (or only unprintable characters) as if none was chosen, so the
  form says "This field is required" about a file the visitor did send;
- refuses a part whose headers pass 1 KiB, i.e. a file name of some 900 bytes, with a bare 400
  that loses everything the visitor typed;
- keeps an extension of up to 255 characters, which a file spooled to disk (over
  ``FILE_UPLOAD_MAX_MEMORY_SIZE``) takes into its temporary file's name: too long, a 500.
So the first of ``FILE_UPLOAD_HANDLERS`` parses the request itself with that parser, naming such a
file "unnamed", shortening a long name (its extension kept when it is one), and reading part
headers of up to 8 KiB.
"""

from __future__ import annotations

import os

from django.core.files.uploadhandler import FileUploadHandler
from django.http import multipartparser

# Django reads a part's headers into at most this many bytes and has no setting for it: 8 KiB
# holds a file name of 1,000 characters of any script, and still bounds what a request can make
# the parser hold.
PART_HEADER_BYTES = 8 * 1024
multipartparser.MAX_TOTAL_HEADER_SIZE = max(
    multipartparser.MAX_TOTAL_HEADER_SIZE, PART_HEADER_BYTES
)

UNNAMED = "unnamed"
NAME_MAX = 200  # characters: more than any form shows, well under a file system's 255 bytes
EXTENSION_MAX = 16  # ".docx", ".jpeg", ".tar.gz"'s ".gz": longer is not an extension


def upload_name(name: str | None) -> str:
    """A name for an uploaded file whose sent name Django's parser kept (``name``) or dropped."""
    if not name:
        return UNNAMED
    stem, extension = os.path.splitext(name)
    if len(extension) > EXTENSION_MAX:
        stem, extension = name, ""
    return stem[: NAME_MAX - len(extension)] + extension


class MultiPartParser(multipartparser.MultiPartParser):
    def sanitize_file_name(self, file_name: str) -> str:
        # Called only for a part that names a file: a file input left empty sends no name.
        return upload_name(super().sanitize_file_name(file_name))


class NamingUploadHandler(FileUploadHandler):
    """Parses a multipart request (``handle_raw_input``: Django's hook to take parsing over) with
    the parser above, handing the files to the handlers listed after this one."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if self.request is None:
            return None
        handlers = [handler for handler in self.request.upload_handlers if handler is not self]
        return MultiPartParser(META, input_data, handlers, encoding).parse()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        return raw_data  # never reached: the parser above never hands this handler a file

    def file_complete(self, file_size: int) -> None:
        return None
