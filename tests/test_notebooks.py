"""Static checks of the committed chapter notebooks and the book configuration (milliseconds).

The notebooks are executed by nbval in the same `make test` run; these tests check what the
book shows: outputs from one top-to-bottom run at the standard budget, no errors, the Colab
setup cell first, and a Colab URL that matches the book's repository settings.
"""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
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


def test_book_renders_committed_outputs_without_executing():
    assert CONFIG["execute"]["execute_notebooks"] == "off"
    assert CONFIG["repository"]["branch"] == "main"
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
