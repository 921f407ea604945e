"""The pack's `index.html`: one self-contained page (inline style, no script, no remote
resource), rendered with Jinja2 and autoescaping from the collected sections."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

_TEMPLATES = Path(__file__).parent / "templates"
_ENV = Environment(
    loader=FileSystemLoader(_TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_index(
    evidence: Mapping[str, Any],
    *,
    screenshots: Sequence[Mapping[str, str]],
    signer: str,
) -> str:
    """The page a person reads; `screenshots` are {file, caption} relative to the pack."""
    template = _ENV.get_template("index.html.j2")
    return template.render(e=evidence, screenshots=screenshots, signer=signer)
