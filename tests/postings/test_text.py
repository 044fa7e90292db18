"""Descriptions: Markdown in, sanitized HTML and a plain summary out."""

from __future__ import annotations

import html
import re

import pytest

from postings.text import is_one_line, render_description, sanitize_html, summarize


def test_markdown_headings_lists_bold_and_links_become_html():
    html = render_description(
        "## Responsibilities\n\n- Ship **fast** code\n- Review [PRs](https://example.com/prs)\n"
    )
    assert "<h2>Responsibilities</h2>" in html
    assert "<li>Ship <strong>fast</strong> code</li>" in html
    assert 'href="https://example.com/prs"' in html


def test_a_top_level_heading_is_demoted_so_it_does_not_compete_with_the_page_title():
    html = render_description("# About us\n\nWe build things.")
    assert "<h1" not in html
    assert "<h2>About us</h2>" in html


def test_links_are_marked_nofollow_and_noopener():
    html = render_description("[Apply](https://careers.example/apply)")
    assert 'rel="nofollow noopener noreferrer ugc"' in html


@pytest.mark.parametrize(
    ("markdown_text", "forbidden"),
    [
        ("<script>alert(1)</script>Hello", "<script"),
        ('<img src="x" onerror="alert(1)">', "onerror"),
        ("[click](javascript:alert(1))", "javascript:"),
        ("[click](JaVaScRiPt:alert(1))", "href="),
        ("![x](data:image/svg+xml;base64,PHN2Zz4=)", "<img"),
        ('<a href="javascript:alert(1)">click</a>', "javascript:"),
        ('<p style="position:fixed">overlay</p>', "style="),
        ('<iframe src="https://evil.example"></iframe>', "<iframe"),
        ('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', "data:"),
        ("<form action='/steal'><input name=password></form>", "<input"),
    ],
)
def test_dangerous_html_inside_markdown_is_removed(markdown_text, forbidden):
    assert forbidden not in render_description(markdown_text).lower()


def test_sanitizing_keeps_the_allowed_formatting_and_text():
    html = sanitize_html("<p>Keep <em>this</em> <b>text</b></p><script>drop()</script>")
    assert html == "<p>Keep <em>this</em> <b>text</b></p>"


def test_tables_from_markdown_extra_survive_sanitizing():
    html = render_description("| Level | Pay |\n|---|---|\n| Senior | 100k |\n")
    assert "<table>" in html
    assert "<td>Senior</td>" in html


def test_empty_or_missing_markdown_renders_as_empty_html():
    assert render_description("") == ""
    assert render_description(None) == ""


def test_summary_is_the_plain_prose_of_the_html_with_entities_unescaped_and_headings_left_out():
    summary = summarize("<h2>Role</h2>\n<p>Build   &amp; run <strong>our</strong> API.</p>")
    assert summary == "Build & run our API."


def test_summary_separates_words_at_block_ends_but_not_inside_inline_tags():
    summary = summarize("<ul><li>Python</li><li>Go</li></ul><p>in<em>line</em>d<br>next</p>")
    assert summary == "Python Go inlined next"


def test_short_summaries_are_kept_whole():
    assert summarize("<p>Short and sweet.</p>") == "Short and sweet."


def test_long_summaries_are_cut_at_a_word_boundary_with_an_ellipsis_within_the_limit():
    text = " ".join(f"word{i}," for i in range(200))
    summary = summarize(f"<p>{text}</p>", limit=60)
    assert len(summary) <= 60
    assert summary.endswith("…")
    assert not summary.endswith(",…")
    assert text.startswith(summary.removesuffix("…"))


def test_a_single_very_long_word_is_still_cut_to_the_limit():
    summary = summarize("<p>" + "x" * 1000 + "</p>", limit=50)
    assert len(summary) <= 50
    assert summary.endswith("…")


@pytest.mark.parametrize(
    "markdown_text",
    [
        "[" * 19999,
        "![" * 9999,
        "[x" * 9999,
        "[" * 9999 + "]" * 9999,
        "term\n: definition\n" * 1500,
        ">" * 19999 + " deep",
        "*_" * 9999,
        "".join("  " * i + "- item\n" for i in range(400)),
    ],
    ids=[
        "brackets",
        "images",
        "bracket-x",
        "balanced",
        "definitions",
        "quotes",
        "emphasis",
        "lists",
    ],
)
def test_descriptions_built_to_be_slow_or_deep_render_like_any_other(markdown_text):
    """Pathological input renders in linear time without overflowing the stack (Python-Markdown
    took most of a minute, or raised RecursionError, on some of these)."""
    rendered = render_description(markdown_text)
    text = html.unescape(re.sub(r"<[^>]+>", "", rendered))
    # Whatever was typed is still there to read, as text (no markup beyond what it asked for).
    # (Not past markdown-it's nesting cap of 20 quotes: the 19,999th quote's word is not shown;
    # the Markdown as typed is kept, and the preview shows what candidates will see.)
    for word in ("[", "x", "definition", "item"):
        if word in markdown_text:
            assert word in text


def test_definition_lists_and_footnotes_render():
    html = render_description("Stack\n: Python and Go\n\nWe ship.[^1]\n\n[^1]: Weekly.")
    assert "<dt>Stack</dt>" in html and "<dd>Python and Go</dd>" in html
    assert "Weekly." in html and "<sup" in html


def test_a_description_renders_without_a_trailing_line_break() -> None:
    # As descriptions stored before markdown-it were rendered (and the benchmark's data set is).
    assert render_description("We build things.\n\n- Python\n") == (
        "<p>We build things.</p>\n<ul>\n<li>Python</li>\n</ul>"
    )


@pytest.mark.parametrize(
    "text",
    [
        "Ann\nBcc: x@example.com",
        "Ann\r",
        "Ann\tExample",
        "Ann\x00",
        "Ann\x7f",
        "Ann\x85Bcc: x@example.com",  # NEL
        "Ann\x9b",  # a C1 control
        "Ann\u2028Bcc: x@example.com",  # line separator
        "Ann\u2029",  # paragraph separator
        "Eve\u202eed.lap",  # right-to-left override
        "Eve\u202bx",  # right-to-left embedding
        "Eve\u2067x\u2069",  # right-to-left isolate
    ],
)
def test_control_characters_and_line_or_direction_breakers_are_not_one_line(text):
    assert not is_one_line(text)


@pytest.mark.parametrize(
    "text", ["Ann Example", "Zoë O'Brien-Łukasz", "محمد علي", "שרה\u200f", "Mehr\u200cdad", ""]
)
def test_names_in_any_script_are_one_line(text):
    assert is_one_line(text)
