"""book/_ext/unique_scripts.py: the Sphinx extension that writes each <script> once per page.

Sphinx 7.4 stores an inline script added after the builder started twice, once with the file
name None and once with "" (the bug the extension works around); the page must keep one.
"""

import importlib.util
from pathlib import Path

from sphinx.builders.html._assets import _JavaScript

EXTENSION = Path(__file__).resolve().parents[1] / "book" / "_ext" / "unique_scripts.py"
spec = importlib.util.spec_from_file_location("unique_scripts", EXTENSION)
unique_scripts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(unique_scripts)


def test_an_inline_script_stored_twice_is_written_once() -> None:
    thebe = 'const THEBE_JS_URL = "https://unpkg.com/thebe"'
    scripts = [
        _JavaScript("_static/doctools.js", priority=200),
        _JavaScript(None, body=thebe),
        _JavaScript("_static/sphinx-thebe.js", **{"async": "async"}),
        _JavaScript("", body=thebe),  # the copy from the registry
        _JavaScript("", body="var togglebuttonSelector = '.toggle';"),
    ]
    context = {"script_files": scripts}
    unique_scripts.drop_repeated_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] is scripts  # changed in place: the template reads this list
    assert [(script.filename, script.attributes.get("body")) for script in scripts] == [
        ("_static/doctools.js", None),
        (None, thebe),
        ("_static/sphinx-thebe.js", None),
        ("", "var togglebuttonSelector = '.toggle';"),
    ]


def test_the_same_file_with_other_attributes_stays() -> None:
    scripts = [_JavaScript("a.js"), _JavaScript("a.js", defer="defer"), _JavaScript("a.js")]
    unique_scripts.drop_repeated_scripts(None, "page", "page.html", {"script_files": scripts}, None)
    assert scripts == [_JavaScript("a.js"), _JavaScript("a.js", defer="defer")]
