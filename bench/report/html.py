"""Render a :class:`~bench.report.model.ReportModel` to one self-contained HTML page.

Jinja2 with autoescape on for every template, so a codec, item or error string can never become
markup; figures are inlined as base64 PNG and CSS/JS are inlined from ``templates/``, so the page
opens from disk with no server and fetches nothing.
"""

from __future__ import annotations

import base64
from pathlib import Path

import jinja2

from bench.report.model import ReportModel

TEMPLATES = Path(__file__).with_name("templates")


def environment() -> jinja2.Environment:
    """The report's Jinja environment: autoescape always on, undefined names are errors."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_html(model: ReportModel) -> str:
    images = {p.filename: base64.b64encode(p.png).decode("ascii") for p in model.plots}
    return environment().get_template("report.html.j2").render(model=model, images=images)
