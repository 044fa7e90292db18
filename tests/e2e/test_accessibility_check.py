"""The journeys' accessibility check (``check_accessibility``) does fail on a real defect: a
field without a label, added to a page that otherwise passes."""

import pytest

from tests.e2e.conftest import check_accessibility

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_field_without_a_label_fails_the_check_and_is_named(page):
    page.goto("/jobs/")
    check_accessibility(page)
    page.evaluate(
        """() => {
          const field = document.createElement("input");
          field.id = "unlabelled";
          document.querySelector("main").append(field);
        }"""
    )
    with pytest.raises(AssertionError) as failure:
        check_accessibility(page)
    assert "label (critical)" in str(failure.value)
    assert "#unlabelled" in str(failure.value)
