"""Self-checks for the chapter exercises: a clear pass or fail for the student, a grade for nbgrader.

Every exercise in the book ends with a self-check cell of the same shape::

    def check():
        kernel = learned_edge_kernel()
        assert kernel.shape == (3, 3), f"the kernel should be 3×3, not {tuple(kernel.shape)}"

    mnlib.exercises.self_check("3.1", check)

:func:`self_check` runs ``check`` and prints one line. A student who has not written the solution
yet (the function still raises ``NotImplementedError``) reads "not attempted yet"; a wrong answer
prints the assertion's message. Neither stops the notebook, so a student version runs top to
bottom. When nbgrader grades or validates a notebook (it sets ``NBGRADER_EXECUTION`` in the
kernel), a failing check raises instead, which is how nbgrader gives the cell zero points.
"""

from __future__ import annotations

import os
from collections.abc import Callable

PASSED = "passed"
NOT_ATTEMPTED = "not attempted yet"
NOT_YET = "not yet"


def self_check(exercise: str, test: Callable[[], None]) -> bool:
    """Run ``test`` (a function of asserts) for ``exercise`` and print whether it passed.

    Returns True when every assert held. Under nbgrader a failure is re-raised, so the
    autograder marks the cell as failed.
    """
    try:
        test()
    except NotImplementedError:
        print(f"Exercise {exercise}: {NOT_ATTEMPTED} (replace `raise NotImplementedError()`).")
        _raise_when_grading()
        return False
    except AssertionError as error:
        print(f"Exercise {exercise}: {NOT_YET}: {error or 'an assertion failed'}")
        _raise_when_grading()
        return False
    print(f"Exercise {exercise}: {PASSED}.")
    return True


def _raise_when_grading() -> None:
    # Re-raises the exception being handled: nbgrader must see the cell fail.
    if os.environ.get("NBGRADER_EXECUTION"):
        raise
