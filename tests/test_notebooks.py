"""Static checks of the committed chapter notebooks and the book configuration (milliseconds).

The notebooks are executed by nbval in the same `make test` run; these tests check what the
book shows: outputs from one top-to-bottom run at the standard budget, no errors and no
warnings, the Colab setup cell first, a Colab URL that matches the book's repository settings,
exercises in the contract's markup whose self-checks passed, and links to the student versions.
"""

import json
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from tools.check_book import HIDDEN_INPUT, chapter_problems, script_problems, student_links
from tools.make_students import (
    chapter_number,
    exercise_markup_problems,
    exercise_numbers,
    student_path,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_NOTEBOOK_BYTES = 2_000_000
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())


def code_cells(notebook: dict) -> list[dict]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def output_text(output: dict) -> str:
    if "text" in output:
        return "".join(output["text"])
    return "".join(output.get("data", {}).get("text/plain", ""))


@pytest.fixture(params=NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def notebook(request) -> dict:
    return json.loads(request.param.read_text())


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 3


def test_execution_counts_are_one_run_top_to_bottom(notebook):
    counts = [cell["execution_count"] for cell in code_cells(notebook)]
    assert counts == list(range(1, len(counts) + 1))


def test_no_error_outputs(notebook):
    for cell in code_cells(notebook):
        if "raises-exception" in cell["metadata"].get("tags", []):
            continue
        assert all(out["output_type"] != "error" for out in cell["outputs"]), source(cell)
        stderr = "".join(output_text(o) for o in cell["outputs"] if o.get("name") == "stderr")
        assert "Traceback" not in stderr, source(cell)


def test_colab_setup_cell_is_first_and_matches_the_book_repository(notebook):
    first = notebook["cells"][0]
    assert first["cell_type"] == "code" and "remove-cell" in first["metadata"].get("tags", [])
    text = source(first)
    assert 'if "google.colab" in sys.modules:' in text
    repository = CONFIG["repository"]
    assert f"git+{repository['url']}@{repository['branch']}" in text


def test_first_output_states_the_standard_budget(notebook):
    outputs = [out for cell in code_cells(notebook) for out in cell["outputs"]]
    assert outputs, "the notebook has no outputs"
    first_line = output_text(outputs[0]).splitlines()[0]
    assert re.fullmatch(r"budget\s*: standard", first_line), first_line


def test_last_cell_prints_the_environment_report(notebook):
    last = code_cells(notebook)[-1]
    assert "environment_report()" in source(last)


def test_exercises_have_hidden_solutions(notebook):
    assert any("hide-input" in cell["metadata"].get("tags", []) for cell in code_cells(notebook))


def test_title_is_numbered_like_the_file(notebook, request):
    number = int(Path(request.node.callspec.id).name.split("_")[0])
    titles = [source(c) for c in notebook["cells"] if c["cell_type"] == "markdown"]
    assert titles[0].startswith(f"# {number}. ")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_size_limit(path):
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES


# A warning in a committed output is either a bug or noise the reader must not learn to ignore:
# DeprecationWarning, FutureWarning, UserWarning, TqdmWarning, ... and `warnings.warn(` lines.
WARNING = re.compile(r"\b\w*Warning\b|\bwarn\(")


def test_no_warnings_in_committed_outputs(notebook):
    for index, cell in enumerate(code_cells(notebook)):
        for output in cell["outputs"]:
            match = WARNING.search(output_text(output))
            assert not match, f"code cell {index} prints {match.group(0)}:\n{source(cell)}"


def test_the_warning_pattern_catches_the_usual_warnings():
    caught = [
        "/x/site-packages/torch/nn/modules/module.py:1: UserWarning: something",
        "FutureWarning: `torch.cuda.amp.GradScaler(args...)` is deprecated",
        "  warnings.warn(",
        "TqdmWarning: IProgress not found.",
        "Warning: the file is large",
    ]
    assert all(WARNING.search(text) for text in caught)
    assert not WARNING.search("no warnings here; a warning, lower case, is text")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_exercises_follow_the_markup_contract(path):
    notebook = nbformat.read(path, as_version=4)
    assert exercise_numbers(notebook), f"{path.name} has no ### Exercise N.K headings"
    assert exercise_markup_problems(notebook, chapter_number(path)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_every_self_check_passed_in_the_committed_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if grade_id.endswith("_check"):
            number = grade_id.removeprefix("ex").removesuffix("_check").replace("_", ".")
            printed = "".join(output_text(output) for output in cell.outputs)
            assert f"Exercise {number}: passed." in printed, f"{grade_id} printed {printed!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_opening_links_the_student_version_for_download_and_colab(path):
    notebook = json.loads(path.read_text())
    cells = notebook["cells"]
    # The opening: the markdown cells before the first code cell after the Colab setup cell.
    second_code = next(i for i, c in enumerate(cells) if i > 0 and c["cell_type"] == "code")
    opening = "".join(source(c) for c in cells[1:second_code] if c["cell_type"] == "markdown")
    for url in student_links(path.name, CONFIG):
        linked = f"({url})" in opening or f'href="{url}"' in opening
        assert linked, f"the opening of {path.name} should link {url}"
    assert student_path(path).is_file(), f"{student_path(path)} is missing: run `make students`"


def test_student_links_follow_the_book_repository():
    download, colab = student_links("02_mnist_mlp.ipynb", CONFIG)
    assert download == (
        "https://github.com/mnist-to-mobilenetv4/course/blob/main/notebooks/student/02_mnist_mlp.ipynb"
    )
    assert colab == "https://colab.research.google.com/github/" + download.removeprefix(
        "https://github.com/"
    )


def toc_files(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["file"]] if "file" in node else []
        for value in node.values():
            found += toc_files(value) if isinstance(value, list | dict) else []
        return found
    if isinstance(node, list):
        return [f for item in node for f in toc_files(item)]
    return []


def test_toc_lists_every_chapter_and_only_existing_pages():
    files = [TOC["root"], *toc_files(TOC["parts"])]
    for name in files:
        matches = list(ROOT.glob(name + ".*"))
        assert matches, f"_toc.yml names {name}, which does not exist"
    chapters = {f"notebooks/{path.stem}" for path in NOTEBOOKS}
    assert chapters <= set(files)


def test_book_serves_mathjax_itself():
    assert "sphinx-mathjax-offline" in CONFIG["sphinx"]["extra_extensions"]


def test_book_renders_committed_outputs_without_executing():
    assert CONFIG["execute"]["execute_notebooks"] == "off"
    assert CONFIG["repository"]["branch"] == "main"
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


# tools/check_book.py runs on the built book in .ci/run; here it runs on a tiny fake build.
LOCAL_MATHJAX = '<script defer="defer" src="../_static/mathjax/tex-chtml.js"></script>'
CDN_MATHJAX = '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>'


def fake_build(tmp_path: Path, page: str, with_mathjax: bool = True) -> Path:
    html = tmp_path / "html"
    (html / "notebooks").mkdir(parents=True)
    (html / "notebooks" / "01_fixture.html").write_text(page)
    if with_mathjax:
        (html / "_static" / "mathjax").mkdir(parents=True)
        (html / "_static" / "mathjax" / "tex-chtml.js").write_text("// MathJax")
    return html


def test_book_check_accepts_local_mathjax(tmp_path):
    assert script_problems(fake_build(tmp_path, LOCAL_MATHJAX)) == []


def test_book_check_rejects_mathjax_from_a_cdn(tmp_path):
    problems = script_problems(fake_build(tmp_path, CDN_MATHJAX))
    assert any("loads a script from the internet" in problem for problem in problems)
    assert "no page loads MathJax, yet the chapters have math" in problems


def test_book_check_rejects_a_missing_local_mathjax(tmp_path):
    problems = script_problems(fake_build(tmp_path, LOCAL_MATHJAX, with_mathjax=False))
    assert any("which is not in the build" in problem for problem in problems)


def test_book_check_wants_hidden_solutions_and_student_links(tmp_path):
    fixture = ROOT / "tests" / "fixtures" / "01_fixture.ipynb"
    bare = chapter_problems(fake_build(tmp_path / "a", "<p>no links</p>"), fixture, CONFIG)
    assert bare[0] == "01_fixture.html: 1 solutions, 0 hidden code cells"
    assert len(bare) == 3  # and both links missing
    links = "".join(f'<a href="{url}">x</a>' for url in student_links(fixture.name, CONFIG))
    good = fake_build(tmp_path / "b", HIDDEN_INPUT + links)
    assert chapter_problems(good, fixture, CONFIG) == []


def test_make_test_is_strict_for_the_chapters_only():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest: setup\n")[1].split("\n\n")[0].replace("\\\n", " ")
    unit_tests, chapters = recipe.splitlines()
    assert "pytest tests" in unit_tests and "MNLIB_STRICT_CHECKS" not in unit_tests
    assert "$(NBVAL) $(NOTEBOOKS)" in chapters and "MNLIB_STRICT_CHECKS=1" in chapters


def _printed(notebook_name: str, pattern: str) -> float:
    """The number that ``pattern`` (one group) finds in a committed chapter's outputs."""
    notebook = json.loads((ROOT / "notebooks" / notebook_name).read_text())
    for cell in code_cells(notebook):
        for output in cell.get("outputs", []):
            found = re.search(pattern, output_text(output))
            if found:
                return float(found.group(1))
    raise AssertionError(f"{notebook_name} prints nothing that matches {pattern!r}")


def test_quoted_part_i_accuracies_match_the_chapters():
    # mnlib.compare quotes the Part I test accuracies; they must be what the chapters print.
    from mnlib.compare import CNN_TEST_ACCURACY, MLP_TEST_ACCURACY

    mlp = _printed("02_mnist_mlp.ipynb", r"test accuracy:\s+([\d.]+) %")
    cnn = _printed("03_mnist_cnn.ipynb", r"test accuracy ([\d.]+)%")
    assert round(100 * MLP_TEST_ACCURACY, 2) == mlp
    assert round(100 * CNN_TEST_ACCURACY, 2) == cnn
