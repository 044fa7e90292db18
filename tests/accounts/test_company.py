"""The company profile: creating it, editing it (owners only), and serving its logo."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from accounts import services
from accounts.factories import EmployerFactory, VerifiedUserFactory
from postings.factories import CompanyFactory
from postings.models import Company, Membership

from .conftest import ROLES

pytestmark = pytest.mark.django_db

CREATE = reverse("accounts:company_create")
EDIT = reverse("accounts:company")


def image_file(
    name="logo.png", fmt="PNG", size=(64, 64), color=(31, 79, 209)
) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type=f"image/{fmt.lower()}")


def company_data(**overrides):
    data = {
        "name": "Initech",
        "company_type": "startup",
        "website": "initech.example",
        "description": "We make TPS reports delightful.",
    }
    data.update(overrides)
    return data


# --- Who may open which page -----------------------------------------------------------------


CREATE_GET = {
    "anonymous": (302, "/accounts/login/"),
    "no_company": (200, None),
    "member": (302, EDIT),
    "owner": (302, EDIT),
    "other_company": (302, EDIT),
}


@pytest.mark.parametrize("role", ROLES)
def test_company_create_page_by_role(client_as, role):
    response = client_as(role).get(CREATE)
    status, location = CREATE_GET[role]
    assert response.status_code == status
    if location:
        assert response["Location"].startswith(location)
    else:
        assert "accounts/company_form.html" in [t.name for t in response.templates]


EDIT_GET = {
    "anonymous": (302, "Log in"),
    "no_company": (302, CREATE),
    "member": (200, "Only an owner can change the profile."),
    "owner": (200, 'name="name" value="Acme Robotics"'),
    "other_company": (200, 'value="Globex"'),
}


@pytest.mark.parametrize("role", ROLES)
def test_company_page_by_role(client_as, role):
    response = client_as(role).get(EDIT)
    status, expected = EDIT_GET[role]
    assert response.status_code == status
    if status == 200:
        assert expected in response.content.decode()
    elif role == "anonymous":
        assert response["Location"].startswith(reverse("accounts:login"))
    else:
        assert response["Location"] == expected


EDIT_POST = {
    "anonymous": 302,
    "no_company": 302,
    "member": 403,
    "owner": 302,
    "other_company": 302,
}


@pytest.mark.parametrize("role", ROLES)
def test_company_edit_by_role_changes_only_the_editors_own_company(
    client_as, role, company, other_company
):
    response = client_as(role).post(EDIT, company_data(name="Renamed"))
    assert response.status_code == EDIT_POST[role]
    company.refresh_from_db()
    other_company.refresh_from_db()
    assert company.name == ("Renamed" if role == "owner" else "Acme Robotics")
    assert other_company.name == ("Renamed" if role == "other_company" else "Globex")


def test_control_characters_in_a_company_name_are_dropped(client_as, company):
    owner = client_as("owner")
    assert owner.post(EDIT, company_data(name="Acme\x07 \x1b[31mWorks")).status_code == 302
    company.refresh_from_db()
    assert company.name == "Acme [31mWorks"
    response = owner.post(EDIT, company_data(name="\x07\x08"))
    assert response.status_code == 200
    assert response.context["form"].errors["name"] == ["Enter the company's name."]


# --- Creating a company ----------------------------------------------------------------------


def test_creating_a_company_makes_the_creator_its_owner(client, loner):
    client.force_login(loner)
    response = client.post(CREATE, company_data())
    assert response.status_code == 302
    assert response["Location"] == reverse("employer:dashboard")
    company = Company.objects.get(name="Initech")
    assert company.slug == "initech"
    assert company.website == "https://initech.example"
    assert company.company_type == "startup"
    assert Membership.objects.get(company=company).user == loner
    assert company.is_owned_by(loner)
    assert not company.is_verified


def test_an_unverified_user_may_create_a_company(client):
    user = VerifiedUserFactory(email_verified_at=None)
    client.force_login(user)
    assert client.post(CREATE, company_data()).status_code == 302
    assert Company.objects.filter(memberships__user=user).exists()


def test_company_slugs_are_unique_and_made_from_the_name(loner):
    CompanyFactory(name="Initech", slug="initech")
    CompanyFactory(name="Initech", slug="initech-2")
    company = services.company_create(owner=loner, name="Initech", company_type="startup")
    assert company.slug == "initech-3"


@pytest.mark.parametrize(
    ("name", "slug"), [("Ünïcode Café GmbH", "unicode-cafe-gmbh"), ("株式会社", "company")]
)
def test_company_slug_of_a_name_without_ascii_letters_falls_back(loner, name, slug):
    assert services.company_create(owner=loner, name=name, company_type="startup").slug == slug


def test_a_user_with_a_company_cannot_create_another(owner):
    with pytest.raises(services.ValidationError):
        services.company_create(owner=owner, name="Second", company_type="startup")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 5000}, "name"),
        ({"company_type": "pirate_ship"}, "company_type"),
        ({"website": "javascript:alert(1)"}, "website"),
        ({"website": "not a url"}, "website"),
        ({"description": "y" * 20_000}, "description"),
    ],
    ids=["empty", "blank", "huge-name", "bad-type", "js-url", "bad-url", "huge-description"],
)
def test_bad_company_input_is_shown_next_to_its_field(client, loner, data, field):
    client.force_login(loner)
    response = client.post(CREATE, company_data(**data))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not Company.objects.filter(memberships__user=loner).exists()


def test_company_form_keeps_what_was_typed_and_escapes_html(client, loner):
    client.force_login(loner)
    response = client.post(CREATE, company_data(name="<script>x()</script>", website="not a url"))
    html = response.content.decode()
    assert 'value="&lt;script&gt;x()&lt;/script&gt;"' in html
    assert "We make TPS reports delightful." in html
    assert "<script>x()" not in html


def test_company_form_with_nothing_posted_does_not_fail(client, loner):
    client.force_login(loner)
    response = client.post(CREATE, {})
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"name", "company_type"}


# --- Editing ---------------------------------------------------------------------------------


def test_owner_edits_the_profile_and_the_slug_stays(client, owner, company):
    client.force_login(owner)
    response = client.post(EDIT, company_data(name="Acme Robotics International"))
    assert response["Location"] == EDIT
    company.refresh_from_db()
    assert company.name == "Acme Robotics International"
    assert company.slug == "acme-robotics"


def test_a_failed_edit_shows_what_was_typed_but_the_saved_name_in_the_heading(
    client, owner, company
):
    client.force_login(owner)
    response = client.post(EDIT, company_data(name="Acme Two", website="::"))
    html = response.content.decode()
    assert '<h1 class="page-title">Acme Robotics</h1>' in html
    assert 'value="Acme Two"' in html
    company.refresh_from_db()
    assert company.name == "Acme Robotics"


# --- Logos -----------------------------------------------------------------------------------


def test_a_logo_is_stored_under_a_random_name_and_served_with_cache_headers(client, owner, company):
    client.force_login(owner)
    client.post(EDIT, company_data(logo=image_file("../../evil name.png")))
    company.refresh_from_db()
    assert company.logo.name.startswith("logos/")
    assert company.logo.name.endswith(".png")
    assert "evil" not in company.logo.name
    url = reverse("accounts:company_logo", args=[company.slug])
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "public, max-age=3600"
    assert response["ETag"]
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_a_versioned_logo_url_may_be_cached_for_a_year(client, owner, company):
    services.company_update(
        company=company, by=owner, logo=image_file(), **company_data(name="Acme Robotics")
    )
    url = services.logo_url(company)
    assert "?v=" in url
    response = client.get(url)
    assert response["Cache-Control"] == "public, max-age=31536000"


def test_an_unchanged_logo_answers_304_to_its_etag(client, owner, company):
    services.company_update(
        company=company, by=owner, logo=image_file(), **company_data(name="Acme Robotics")
    )
    url = reverse("accounts:company_logo", args=[company.slug])
    etag = client.get(url)["ETag"]
    response = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304


def test_logos_are_public_for_any_company_by_slug(client, outsider, company, owner):
    services.company_update(
        company=company, by=owner, logo=image_file(), **company_data(name="Acme Robotics")
    )
    client.force_login(outsider)
    assert client.get(reverse("accounts:company_logo", args=[company.slug])).status_code == 200


def test_a_company_without_a_logo_or_an_unknown_slug_is_a_404(client, company):
    assert client.get(reverse("accounts:company_logo", args=[company.slug])).status_code == 404
    assert client.get(reverse("accounts:company_logo", args=["no-such"])).status_code == 404


def test_a_new_logo_replaces_and_deletes_the_old_file(
    owner, company, django_capture_on_commit_callbacks
):
    data = company_data(name="Acme Robotics")
    services.company_update(company=company, by=owner, logo=image_file(), **data)
    old = company.logo.name
    storage = company.logo.storage
    with django_capture_on_commit_callbacks(execute=True):
        services.company_update(company=company, by=owner, logo=image_file(fmt="JPEG"), **data)
    assert company.logo.name.endswith(".jpg")
    assert not storage.exists(old)
    assert storage.exists(company.logo.name)


def test_the_owner_can_remove_the_logo(client, owner, company, django_capture_on_commit_callbacks):
    data = company_data(name="Acme Robotics")
    services.company_update(company=company, by=owner, logo=image_file(), **data)
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(EDIT, {**data, "logo-clear": "on"})
    assert response.status_code == 302
    company.refresh_from_db()
    assert not company.logo


def test_the_edit_form_links_the_current_logo_through_the_logo_view(client, owner, company):
    services.company_update(
        company=company, by=owner, logo=image_file(), **company_data(name="Acme Robotics")
    )
    client.force_login(owner)
    html = client.get(EDIT).content.decode()
    assert "/media/" not in html
    assert services.logo_url(company) in html


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("logo.png", b"not an image at all"), "not one"),
        (SimpleUploadedFile("logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>"), "not one"),
        (image_file(fmt="BMP", name="logo.bmp"), "not one"),
        (image_file(size=(4001, 10)), "at most 4000 pixels"),
        (SimpleUploadedFile("big.png", b"\x89PNG" + b"0" * (1024 * 1024)), "at most 1.0\xa0MB"),
    ],
    ids=["text", "svg", "bmp", "too-wide", "too-big"],
)
def test_logos_that_are_not_small_images_are_refused(client, owner, company, upload, message):
    client.force_login(owner)
    response = client.post(EDIT, company_data(logo=upload))
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["logo"])
    company.refresh_from_db()
    assert not company.logo


def test_a_member_cannot_change_the_profile_through_the_service(member, company):
    with pytest.raises(services.PermissionDenied):
        services.company_update(company=company, by=member, **company_data())


def test_a_second_employer_has_their_own_company(client):
    first = EmployerFactory()
    second = EmployerFactory()
    client.force_login(second.user)
    html = client.get(EDIT).content.decode()
    assert second.company.name in html
    assert first.company.name not in html
