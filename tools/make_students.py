"""Make the student version of each chapter: solutions replaced by stubs, outputs cleared.

``make students`` runs this on every chapter (``notebooks/NN_name.ipynb``) and writes
``notebooks/student/NN_name.ipynb``. The transformation is nbgrader's own: the preprocessors
that ``nbgrader generate_assignment`` uses, in its order, without the grading database.

- ``LockCells``: self-check cells become read-only in Jupyter (``editable: false``).
- ``ClearSolutions``: every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region becomes
  ``# YOUR CODE HERE`` + ``raise NotImplementedError()``; a markdown answer cell becomes
  ``YOUR ANSWER HERE``.
- ``ClearOutput``: no outputs, execution counts null.
- ``ClearHiddenTests`` and ``ClearMarkScheme``: remove hidden tests and mark schemes (none yet).
- ``CheckCellMetadata``: nbgrader's own validation (grade ids unique, points on graded cells).
  A markdown answer cell is a manually graded answer (``solution`` and ``grade``, 1 point), as
  nbgrader requires of markdown solution cells.

Then tags that only the book or nbval read are dropped where they mean nothing in a student
notebook: nbval's tags everywhere (there are no outputs to compare), ``hide-input`` on solution
cells (the student must see the stub). The result is written with nbformat's stable JSON
(sorted keys, one-space indent), so the same chapter always gives the same bytes and a test can
tell when a committed student version is out of date.

Before any of that, the chapter's exercise markup is checked against the contract
(``exercise_markup_problems``); a chapter that breaks it is refused with the file and cell named.

Usage::

    python tools/make_students.py              # every chapter
    python tools/make_students.py --check      # exit 1 if a committed student version is stale
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ClearSolutions,
    LockCells,
)

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "notebooks"
CHAPTER_NAME = re.compile(r"(\d\d)_\w+\.ipynb")

EXERCISE_HEADING = re.compile(r"^### Exercise (\d+)\.(\d+): \S", re.MULTILINE)
SOLUTION_METADATA = {"grade": False, "locked": False, "schema_version": 3, "solution": True,
                     "task": False}  # fmt: skip
CHECK_METADATA = {"grade": True, "locked": True, "points": 1, "schema_version": 3,
                  "solution": False, "task": False}  # fmt: skip
# nbgrader accepts a markdown solution cell only as a manually graded answer.
ANSWER_METADATA = {"grade": True, "locked": False, "points": 1, "schema_version": 3,
                   "solution": True, "task": False}  # fmt: skip
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
# Tags that only nbval reads: a student notebook has no outputs to compare.
NBVAL_TAGS = ("nbval-check-output", "nbval-ignore-output", "nbval-skip")
# Tags that only the book reads and that would hide the student's own work.
SOLUTION_DISPLAY_TAGS = ("hide-input", "hide-cell", "remove-input", "remove-cell")


def chapter_number(path: Path) -> int:
    """The chapter number of ``notebooks/NN_name.ipynb``; a clear error for other names."""
    match = CHAPTER_NAME.fullmatch(path.name)
    if not match:
        raise ValueError(f"{path}: a chapter notebook is named NN_name.ipynb")
    return int(match.group(1))


def _source(cell: NotebookNode) -> str:
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def _tags(cell: NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def exercise_numbers(notebook: NotebookNode) -> list[str]:
    """The exercises ``"N.K"`` announced by ``### Exercise N.K: title`` headings, in order."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            found += [f"{n}.{k}" for n, k in EXERCISE_HEADING.findall(_source(cell))]
    return found


def _grade_id(number: str, role: str) -> str:
    return f"ex{number.replace('.', '_')}_{role}"


def _solution_problems(cell: NotebookNode, where: str) -> list[str]:
    """A solution cell: hidden in the book, solution regions inside defs, a valid stub."""
    problems = []
    if "hide-input" not in _tags(cell):
        problems.append(f"{where}: should be tagged hide-input (the book hides solutions)")
    lines = _source(cell).splitlines()
    begins = [line for line in lines if line.strip() == BEGIN]
    ends = [line for line in lines if line.strip() == END]
    if not begins or len(begins) != len(ends):
        return [*problems, f"{where}: needs matching '{BEGIN}' / '{END}' lines"]
    if any(not line.startswith((" ", "\t")) for line in begins):
        problems.append(f"{where}: '{BEGIN}' should lie inside a function body (indented)")
    stub = copy.deepcopy(cell)
    ClearSolutions().preprocess_cell(stub, {"language": "python"}, 0)
    try:
        tree = ast.parse(_source(stub))
    except SyntaxError as error:
        return [*problems, f"{where}: the student stub is not valid Python ({error.msg})"]
    allowed = (ast.FunctionDef, ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign)
    if not any(isinstance(node, ast.FunctionDef) for node in tree.body) or not all(
        isinstance(node, allowed) for node in tree.body
    ):
        problems.append(f"{where}: should only define functions (no top-level calls)")
    return problems


def exercise_markup_problems(notebook: NotebookNode, chapter: int) -> list[str]:
    """Every way the notebook's exercises break the markup contract (empty list: none).

    Checks, per ``### Exercise N.K`` heading: N is the chapter, K counts 1, 2, ...; a solution
    cell ``exN_K_solution`` and a self-check cell ``exN_K_check`` follow, in that order, with
    the contract's nbgrader metadata; an optional ``exN_K_answer`` markdown dropdown. Every
    nbgrader cell belongs to an announced exercise, and grade ids are unique.
    """
    numbers = exercise_numbers(notebook)
    problems = []
    expected = [f"{chapter}.{k}" for k in range(1, len(numbers) + 1)]
    if numbers != expected:
        problems.append(f"exercises are numbered {numbers}, expected {expected}")
    cells_by_id: dict[str, tuple[int, NotebookNode]] = {}
    for index, cell in enumerate(notebook.cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is None:
            continue
        if grade_id in cells_by_id:
            problems.append(f"cell {index}: duplicate grade_id {grade_id!r}")
        cells_by_id[grade_id] = (index, cell)
    roles = {"solution": ("code", SOLUTION_METADATA), "check": ("code", CHECK_METADATA),
             "answer": ("markdown", ANSWER_METADATA)}  # fmt: skip
    known = {_grade_id(number, role) for number in numbers for role in roles}
    for grade_id, (index, _) in cells_by_id.items():
        if grade_id not in known:
            problems.append(f"cell {index}: grade_id {grade_id!r} names no ### Exercise heading")
    for number in numbers:
        problems += _exercise_problems(number, cells_by_id, roles)
    return problems


def _exercise_problems(number: str, cells_by_id: dict, roles: dict) -> list[str]:
    problems = []
    for role, (cell_type, metadata) in roles.items():
        grade_id = _grade_id(number, role)
        if grade_id not in cells_by_id:
            if role != "answer":
                problems.append(f"exercise {number}: no cell with grade_id {grade_id!r}")
            continue
        index, cell = cells_by_id[grade_id]
        where = f"cell {index} ({grade_id})"
        if cell.cell_type != cell_type:
            problems.append(f"{where}: should be a {cell_type} cell")
        if cell.metadata["nbgrader"] != {**metadata, "grade_id": grade_id}:
            problems.append(f"{where}: nbgrader metadata should be {metadata} plus grade_id")
        if role == "solution":
            problems += _solution_problems(cell, where)
        elif role == "check":
            if any(tag.startswith(("hide-", "remove-")) for tag in _tags(cell)):
                problems.append(f"{where}: should be visible (no hide/remove tag)")
            if f'self_check("{number}", check)' not in _source(cell):
                problems.append(
                    f'{where}: should call mnlib.exercises.self_check("{number}", check)'
                )
        elif ":::{dropdown}" not in _source(cell):
            problems.append(f"{where}: should hold a :::{{dropdown}} Answer block")
    ids = [_grade_id(number, role) for role in ("solution", "check")]
    if all(i in cells_by_id for i in ids) and cells_by_id[ids[0]][0] > cells_by_id[ids[1]][0]:
        problems.append(f"exercise {number}: the solution cell should come before its self-check")
    return problems


def _drop_tags(cell: NotebookNode, tags: tuple[str, ...]) -> None:
    kept = [tag for tag in _tags(cell) if tag not in tags]
    if kept:
        cell.metadata["tags"] = kept
    else:
        cell.metadata.pop("tags", None)


def check_nbgrader_metadata(notebook: NotebookNode) -> None:
    """nbgrader's own ``CheckCellMetadata`` on every cell (a copy: it may normalise metadata)."""
    CheckCellMetadata().preprocess(copy.deepcopy(notebook), {})


def student_version(notebook: NotebookNode) -> NotebookNode:
    """The student version of a chapter notebook (a new notebook; the argument is unchanged)."""
    check_nbgrader_metadata(notebook)
    student = copy.deepcopy(notebook)
    resources: dict = {}
    for preprocessor in (LockCells(), ClearSolutions(), ClearOutput(), ClearHiddenTests(),
                         ClearMarkScheme()):  # fmt: skip
        student, resources = preprocessor.preprocess(student, resources)
    for cell in student.cells:
        cell.metadata.pop("execution", None)  # nbclient's timings
        _drop_tags(cell, NBVAL_TAGS)
        if cell.metadata.get("nbgrader", {}).get("solution"):
            _drop_tags(cell, SOLUTION_DISPLAY_TAGS)
    student.metadata.pop("widgets", None)
    return student


def student_text(path: Path) -> str:
    """The exact text of the student version of the chapter at ``path``.

    Raises ValueError naming the file and the problems when the exercise markup is broken.
    """
    notebook = nbformat.read(path, as_version=4)
    problems = exercise_markup_problems(notebook, chapter_number(path))
    if problems:
        raise ValueError(
            f"{path}: exercise markup breaks the contract:\n  " + "\n  ".join(problems)
        )
    text = nbformat.writes(student_version(notebook))
    return text if text.endswith("\n") else text + "\n"


def student_path(path: Path) -> Path:
    """Where the student version of ``notebooks/NN_name.ipynb`` lives."""
    return path.parent / "student" / path.name


def chapters() -> list[Path]:
    """Every chapter notebook, in order."""
    return sorted(p for p in CHAPTERS.glob("*.ipynb") if CHAPTER_NAME.fullmatch(p.name))


def _shown(path: Path) -> str:
    """A path as the user reads it: relative to the repository when inside it."""
    path = path.resolve()
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter")
    parser.add_argument("--check", action="store_true", help="only report stale student versions")
    args = parser.parse_args()
    stale = []
    for path in args.notebooks or chapters():
        try:
            text = student_text(path)
        except ValueError as error:  # broken markup: say where, without a traceback
            print(error, file=sys.stderr)
            return 2
        target = student_path(path)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(target)
            continue
        target.parent.mkdir(exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"wrote {_shown(target)}")
    if stale:
        names = ", ".join(_shown(path) for path in stale)
        print(f"out of date (run `make students`): {names}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
