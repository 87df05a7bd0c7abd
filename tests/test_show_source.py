"""mnlib.show_source: the code a chapter shows is the code in the file, highlighted."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.display import Code

import mnlib
from mnlib.models import mnist

MNIST_FILE = Path(mnist.__file__).read_text(encoding="utf-8")


def lines_of(text: str, first_line: str) -> str:
    """The top-level definition that starts with ``first_line``, up to the next one."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(first_line))
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i][:1] not in ("", " ", "\n")),
        len(lines),
    )
    return "".join(lines[start:end]).rstrip("\n") + "\n"


@pytest.mark.parametrize(
    ("obj", "first_line"),
    [(mnist.conv_stage, "def conv_stage("), (mnist.CNN, "class CNN(")],
    ids=["function", "class"],
)
def test_shows_the_lines_of_the_file(obj, first_line):
    shown = mnlib.show_source(obj)
    assert isinstance(shown, Code)
    assert shown.data == lines_of(MNIST_FILE, first_line)


def test_renders_highlighted_python():
    html = mnlib.show_source(mnist.conv_stage)._repr_html_()
    assert "conv_stage" in html and "<span" in html  # Pygments markup, not plain text


def test_a_whole_module():
    assert mnlib.show_source(mnist).data == MNIST_FILE


def test_rejects_objects_without_source():
    with pytest.raises(TypeError, match="cannot show the source of 42"):
        mnlib.show_source(42)
