"""Sphinx extension: each ``<script>`` once per page.

Sphinx 7.4 (the version Jupyter Book 1 pins) writes an inline script twice when an extension adds
it after the builder started, as sphinx-thebe and sphinx-togglebutton do: the builder stores it
with the file name ``None``, then copies it again from the registry as ``""``, and the two do not
compare equal. The second ``const THEBE_JS_URL = ...`` then stops with "Identifier
'THEBE_JS_URL' has already been declared" on every page (found by tools/browser_check.py).
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def _key(script: Any) -> tuple:
    """What makes two scripts the same: the file (an inline one has none), order and attributes."""
    return (script.filename or "", script.priority, tuple(sorted(script.attributes.items())))


def drop_repeated_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any
) -> None:
    """Keep the first of scripts that are the same (``html-page-context``, after the themes)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        if _key(script) not in seen:
            seen.add(_key(script))
            unique.append(script)
    scripts[:] = unique


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
