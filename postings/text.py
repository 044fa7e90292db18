"""Descriptions are written in Markdown and shown as sanitized HTML.

Rendering happens once, when a description is written, not on every page view. nh3 (the
maintained successor of bleach) removes scripts, event handlers and ``javascript:`` URLs, whether
they came from Markdown, raw HTML inside it, or an imported page.
"""

import html
import re

import nh3
from markdown_it import MarkdownIt
from mdit_py_plugins.deflist import deflist_plugin
from mdit_py_plugins.footnote import footnote_plugin

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "dl", "dt", "em", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "strong", "sub", "sup", "table", "tbody",
    "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "th": {"scope"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}

_TAG = re.compile(r"<[^>]+>")
_BLOCK_END = re.compile(r"</(p|li|h[1-6]|td|th|dd|dt|blockquote|pre)>|<br\s*/?>", re.IGNORECASE)
_HEADING = re.compile(r"<h[1-6][^>]*>.*?</h[1-6]>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")
# A description's top heading would compete with the page's own h1, so h1 becomes h2.
_H1 = re.compile(r"<(/?)h1(\s|>)")


# Control characters XML 1.0 has no place for (tab, line feed and carriage return it allows):
# Django's feed writer refuses them, and no reader shows them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def without_control_characters(text: str) -> str:
    return _CONTROL.sub("", text)


# What a single line of plain text (a name, a phone number: they go into email headers and
# greetings) cannot hold: any control character, C0 or C1 (NEL, U+0085, ends a line too), the
# Unicode line and paragraph separators, and the bidi embeddings, overrides and isolates that
# make "Eve\u202eed.lap" read "Evepal.de". Joiners and direction marks stay: scripts need them.
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def is_one_line(text: str) -> bool:
    return not _NOT_ONE_LINE.search(text)


def sanitize_html(raw_html: str) -> str:
    return nh3.clean(
        raw_html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="nofollow noopener noreferrer ugc",
    )


# CommonMark with tables, definition lists and footnotes. markdown-it-py parses in linear time
# whatever it is given (its nesting is capped): Python-Markdown took 57 s over 20,000 "[" and
# overflowed the stack on 1,500 definitions, an employer's preview taking a web worker down.
# Raw HTML and every link pass to the sanitizer, which keeps only the tags in ALLOWED_TAGS and
# links of ALLOWED_URL_SCHEMES: a "javascript:" link becomes its bare text, as it always has.
_MARKDOWN = (
    MarkdownIt("commonmark", {"html": True})
    .enable("table")
    .use(deflist_plugin)
    .use(footnote_plugin)
)
_MARKDOWN.validateLink = lambda url: True  # type: ignore[method-assign]


def render_description(markdown_text: str) -> str:
    rendered = _MARKDOWN.render(markdown_text or "")
    # Without markdown-it's closing line break, as descriptions stored before it were rendered.
    return sanitize_html(_H1.sub(r"<\1h2\2", rendered)).strip()


def summarize(html_text: str, limit: int = 240) -> str:
    """Plain text of the first words of a description, for cards and previews."""
    # Headings are labels, not prose; inline tags join words, block ends separate them.
    text = _BLOCK_END.sub(" ", _HEADING.sub(" ", html_text))
    text = _SPACE.sub(" ", html.unescape(_TAG.sub("", text))).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",.;:-") + "…"
