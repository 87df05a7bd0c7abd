"""Show the real source of mnlib objects in notebooks: chapters teach from the code that runs."""

from __future__ import annotations

import inspect
from typing import Any


def show_source(obj: Any) -> Any:
    """The source of a function, class or module, as an ``IPython.display.Code`` object.

    It always returns that type: Jupyter (and the built book) renders it syntax-highlighted,
    and its ``.data`` is the plain source text, exactly as in the file. It needs IPython,
    which every Jupyter installation has.
    """
    try:
        source = inspect.getsource(obj)
    except (TypeError, OSError) as error:
        raise TypeError(f"cannot show the source of {obj!r}: {error}") from None
    try:
        from IPython.display import Code
    except ImportError as error:
        raise ImportError("show_source displays code in Jupyter: pip install ipython") from error
    return Code(source, language="python")
