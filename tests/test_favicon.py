"""The site's icon: /favicon.ico, which browsers and crawlers ask for whatever a page links to, and
the icons every page links to."""

import io
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse
from PIL import Image

pytestmark = pytest.mark.django_db


def test_favicon_ico_is_a_real_icon_at_the_sites_root(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    with Image.open(io.BytesIO(b"".join(response.streaming_content))) as icon:
        assert icon.format == "ICO"
        assert {(16, 16), (32, 32), (48, 48)} <= set(icon.info["sizes"])


def test_every_page_links_to_the_icons(client):
    html = client.get(reverse("postings:list")).content.decode()
    icons = re.findall(r'<link rel="icon" href="([^"]+)"', html)

    assert "/favicon.ico" in icons
    assert "/static/img/icon.svg" in icons
    assert Path(finders.find("img/icon.svg")).read_text().startswith("<svg")
