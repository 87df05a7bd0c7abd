"""Show the real source of mnlib objects in notebooks: chapters teach from the code that runs."""

from __future__ import annotations

import inspect
from typing import Any


def show_source(obj: Any) -> Any:
    """Display the source of a function, class or module, syntax-highlighted.

    In Jupyter (and in the built book) this returns an ``IPython.display.Code`` object,
    which renders with highlighting; elsewhere it returns the plain source text.
    """
    try:
        source = inspect.getsource(obj)
    except (TypeError, OSError) as error:
        raise TypeError(f"cannot show the source of {obj!r}: {error}") from None
    try:
        from IPython.display import Code
    except ImportError:
        return source
    return Code(source, language="python")
