"""HTML from the report template, and the PDF weasyprint makes of it."""

from __future__ import annotations

import os
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).parent / "templates"

# Autoescape on every template: symbols, sources and file names come from config and data.
_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_report_html(template: str, context: dict) -> str:
    """The template filled with ``context``; every value is HTML-escaped."""
    return _ENVIRONMENT.get_template(template).render(**context)


def write_pdf(html: str, base_folder: Path, pdf_path: Path) -> int:
    """Write ``html`` as a PDF (images resolved relative to ``base_folder``); return page count."""
    # Imported here: weasyprint loads Pango at import, which callers of the HTML part don't need.
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    # Local files only, and a missing chart is an error rather than a blank space in the PDF.
    fetcher = URLFetcher(allowed_protocols=("file",), fail_on_errors=True)
    document = HTML(string=html, base_url=f"{base_folder}{os.sep}", url_fetcher=fetcher).render()
    document.write_pdf(pdf_path)
    return len(document.pages)
