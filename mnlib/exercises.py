"""Self-checks for the chapter exercises: a clear pass or fail for students, a grade for nbgrader.

Every exercise in the book ends with a self-check cell of the same shape::

    def check():
        kernel = learned_edge_kernel()
        assert kernel.shape == (3, 3), f"the kernel should be 3×3, not {tuple(kernel.shape)}"

    mnlib.exercises.self_check("3.1", check)

:func:`self_check` runs ``check`` and prints one line. A student who has not written the solution
yet (the function still raises ``NotImplementedError``) reads "not attempted yet"; a wrong answer
prints the assertion's message. Neither stops the notebook, so a student version runs top to
bottom.

A failing check raises instead of printing in two cases:

- nbgrader grades or validates the notebook (it sets ``NBGRADER_EXECUTION`` in the kernel),
  which is how nbgrader gives the cell zero points;
- ``MNLIB_STRICT_CHECKS=1`` is set, as ``make test`` does for the chapter notebooks, so CI fails
  as soon as a chapter's own solution stops passing its self-check. Student versions run
  without it.
"""

from __future__ import annotations

import os
from collections.abc import Callable

PASSED = "passed"
NOT_ATTEMPTED = "not attempted yet"
NOT_YET = "not yet"


def self_check(exercise: str, test: Callable[[], None]) -> bool:
    """Run ``test`` (a function of asserts) for ``exercise`` and print whether it passed.

    Returns True when every assert held. Under nbgrader or ``MNLIB_STRICT_CHECKS=1`` a failure
    is re-raised, so the autograder (or CI) marks the cell as failed.
    """
    try:
        test()
    except NotImplementedError:
        print(f"Exercise {exercise}: {NOT_ATTEMPTED} (replace `raise NotImplementedError()`).")
        _raise_when_strict()
        return False
    except AssertionError as error:
        print(f"Exercise {exercise}: {NOT_YET}: {str(error) or 'an assertion failed'}")
        _raise_when_strict()
        return False
    print(f"Exercise {exercise}: {PASSED}.")
    return True


_TRUE = ("1", "true", "yes")
_FALSE = ("", "0", "false", "no")


def strict() -> bool:
    """Whether a failing self-check raises: under nbgrader, or with ``MNLIB_STRICT_CHECKS=1``."""
    if os.environ.get("NBGRADER_EXECUTION"):
        return True
    value = os.environ.get("MNLIB_STRICT_CHECKS", "").strip().lower()
    if value not in _TRUE + _FALSE:
        raise ValueError(f"MNLIB_STRICT_CHECKS={value!r} is not one of 1, 0 (or true, false)")
    return value in _TRUE


def _raise_when_strict() -> None:
    # Re-raises the exception being handled: nbgrader (or CI) must see the cell fail.
    if strict():
        raise
