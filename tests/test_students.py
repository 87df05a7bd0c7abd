"""Student versions of the chapters (tools/make_students.py, `make students`).

Three kinds of test:

- the transformation, on a one-exercise fixture chapter (tests/fixtures/01_fixture.ipynb);
- the committed student versions are exactly what `make students` makes from the chapters;
- each committed student version runs top to bottom at the quick budget and every self-check
  says "not attempted yet" (the student notebooks run here, never through nbval).
"""

import copy
import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from mnlib.exercises import NOT_ATTEMPTED
from tools import make_students

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "01_fixture.ipynb"
CHAPTERS = make_students.chapters()
STUB = "    # YOUR CODE HERE\n    raise NotImplementedError()"


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def by_grade_id(notebook: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {
        cell.metadata["nbgrader"]["grade_id"]: cell
        for cell in notebook.cells
        if "nbgrader" in cell.metadata
    }


def self_check_cells(notebook: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    """The self-check cell of every exercise, by exercise number ("N.K")."""
    cells = by_grade_id(notebook)
    return {
        n: cells[f"ex{n.replace('.', '_')}_check"] for n in make_students.exercise_numbers(notebook)
    }


def stdout(cell: nbformat.NotebookNode) -> str:
    return "".join(out.get("text", "") for out in cell.outputs if out.get("name") == "stdout")


def execute_as_a_student(notebook: nbformat.NotebookNode, workdir: Path, monkeypatch):
    """Run a notebook top to bottom the way a student would, at the quick budget.

    The working folder is a fresh temporary one, as on Colab (/content): a student version
    must not rely on files beside it. Strict self-checks and nbgrader are off.
    """
    monkeypatch.setenv("MNLIB_BUDGET", "quick")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.delenv("MNLIB_STRICT_CHECKS", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    resources = {"metadata": {"path": str(workdir)}}
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources=resources)
    client.execute()
    return notebook


# --- The transformation, on the fixture ---------------------------------------------------


@pytest.fixture
def teacher() -> nbformat.NotebookNode:
    return read(FIXTURE)


@pytest.fixture
def student(teacher) -> nbformat.NotebookNode:
    return make_students.student_version(teacher)


def test_fixture_follows_the_exercise_markup(teacher):
    assert make_students.exercise_markup_problems(teacher, chapter=1) == []
    assert make_students.exercise_numbers(teacher) == ["1.1"]


def test_solution_body_becomes_nbgraders_stub(student):
    solution = by_grade_id(student)["ex1_1_solution"]
    assert solution.source == f'def square(x: float) -> float:\n    """x times x."""\n{STUB}'
    assert "return x * x" not in nbformat.writes(student)


def test_markdown_answer_becomes_your_answer_here(student):
    assert by_grade_id(student)["ex1_1_answer"].source == "YOUR ANSWER HERE"


def test_outputs_and_execution_counts_are_cleared(teacher, student):
    assert any(cell.get("outputs") for cell in teacher.cells)
    for cell in student.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_nbval_and_solution_hiding_tags_are_dropped(student):
    tags = [tag for cell in student.cells for tag in cell.metadata.get("tags", [])]
    assert "nbval-check-output" not in tags
    assert "tags" not in by_grade_id(student)["ex1_1_solution"].metadata
    assert tags == ["remove-cell"]  # the Colab setup cell keeps its tag


def test_self_check_cells_are_locked(student):
    check = by_grade_id(student)["ex1_1_check"]
    assert check.metadata["editable"] is False and check.metadata["deletable"] is False


def test_the_teacher_notebook_is_left_unchanged(teacher):
    before = copy.deepcopy(teacher)
    make_students.student_version(teacher)
    assert teacher == before


def test_output_is_stable_json(tmp_path):
    text = make_students.student_text(FIXTURE)
    assert text == make_students.student_text(FIXTURE)
    assert text == json.dumps(json.loads(text), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def test_main_writes_the_student_version_beside_the_chapter(tmp_path, monkeypatch, capsys):
    chapter = tmp_path / "01_fixture.ipynb"
    chapter.write_text(FIXTURE.read_text())
    monkeypatch.setattr("sys.argv", ["make_students.py", str(chapter)])
    assert make_students.main() == 0
    written = tmp_path / "student" / "01_fixture.ipynb"
    assert written.read_text() == make_students.student_text(chapter)
    monkeypatch.setattr("sys.argv", ["make_students.py", "--check", str(chapter)])
    assert make_students.main() == 0
    written.write_text("{}")
    assert make_students.main() == 1
    assert "out of date" in capsys.readouterr().err


def test_the_fixture_student_version_runs_and_is_not_attempted(student, tmp_path, monkeypatch):
    executed = execute_as_a_student(student, tmp_path, monkeypatch)
    check = by_grade_id(executed)["ex1_1_check"]
    assert stdout(check).startswith(f"Exercise 1.1: {NOT_ATTEMPTED}")


# --- Broken markup is refused, with the file and the cause named -----------------------------


def break_markup(notebook: nbformat.NotebookNode, how: str) -> None:
    cells = by_grade_id(notebook)
    solution, check = cells["ex1_1_solution"], cells["ex1_1_check"]
    if how == "duplicate grade_id":
        cells["ex1_1_answer"].metadata["nbgrader"]["grade_id"] = "ex1_1_check"
    elif how == "visible solution":
        solution.metadata["tags"] = []
    elif how == "graded solution":
        solution.metadata["nbgrader"]["grade"] = True
    elif how == "solution outside a function":
        solution.source = "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"
    elif how == "unclosed solution":
        solution.source = solution.source.replace("    ### END SOLUTION", "")
    elif how == "call in the solution cell":
        solution.source += "\n\n\nsquare(2.0)"
    elif how == "wrong exercise number":
        check.source = check.source.replace('"1.1"', '"1.2"')
    elif how == "heading numbered for another chapter":
        notebook.cells[3].source = notebook.cells[3].source.replace("1.1", "2.1")
    elif how == "check before solution":
        notebook.cells[4], notebook.cells[5] = notebook.cells[5], notebook.cells[4]


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("duplicate grade_id", "duplicate grade_id 'ex1_1_check'"),
        ("visible solution", "should be tagged hide-input"),
        ("graded solution", "nbgrader metadata should be"),
        ("solution outside a function", "should lie inside a function body"),
        ("unclosed solution", "matching '### BEGIN SOLUTION'"),
        ("call in the solution cell", "should only define functions"),
        ("wrong exercise number", 'self_check\\("1.1", check\\)'),
        ("heading numbered for another chapter", "expected \\['1.1'\\]"),
        ("check before solution", "solution cell should come before its self-check"),
    ],
)
def test_broken_markup_is_refused_naming_the_file(tmp_path, how, message):
    notebook = read(FIXTURE)
    break_markup(notebook, how)
    broken = tmp_path / "01_broken.ipynb"
    nbformat.write(notebook, broken)
    with pytest.raises(ValueError, match=f"01_broken.ipynb: exercise markup(.|\n)*{message}"):
        make_students.student_text(broken)


def test_main_refuses_broken_markup_without_writing(tmp_path, monkeypatch, capsys):
    notebook = read(FIXTURE)
    break_markup(notebook, "visible solution")
    chapter = tmp_path / "01_broken.ipynb"
    nbformat.write(notebook, chapter)
    monkeypatch.setattr("sys.argv", ["make_students.py", str(chapter)])
    assert make_students.main() == 2
    assert "01_broken.ipynb: exercise markup breaks the contract" in capsys.readouterr().err
    assert not (tmp_path / "student").exists()


def test_a_file_that_is_not_a_chapter_is_refused(tmp_path):
    with pytest.raises(ValueError, match="notes.ipynb: a chapter notebook is named NN_name"):
        make_students.chapter_number(tmp_path / "notes.ipynb")


# --- The committed student versions ---------------------------------------------------------


def test_every_chapter_has_exactly_one_student_version():
    students = sorted(path.name for path in (ROOT / "notebooks" / "student").glob("*.ipynb"))
    assert students == [path.name for path in CHAPTERS]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[path.name for path in CHAPTERS])
def test_committed_student_version_is_up_to_date(chapter):
    committed = make_students.student_path(chapter)
    assert committed.exists(), f"{committed} is missing: run `make students`"
    assert committed.read_text(encoding="utf-8") == make_students.student_text(chapter), (
        f"{committed} is out of date: run `make students`"
    )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[path.name for path in CHAPTERS])
def test_student_version_runs_and_every_check_is_not_attempted(chapter, tmp_path, monkeypatch):
    path = make_students.student_path(chapter)
    assert path.exists(), f"{path} is missing: run `make students`"
    checks = self_check_cells(execute_as_a_student(read(path), tmp_path, monkeypatch))
    assert checks, f"{chapter.name} has no exercises"
    for number, cell in checks.items():
        assert stdout(cell).startswith(f"Exercise {number}: {NOT_ATTEMPTED}"), stdout(cell)
