"""The accuracies that mnlib.compare quotes must be the numbers the chapters print.

Each quoted constant is checked against the committed output of the chapter it names (the
standard-budget run): a chapter re-executed with new numbers makes this test fail until the
quote is updated. Every Part II entry quotes one of these constants, with its setup.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mnlib import compare

ROOT = Path(__file__).resolve().parents[1]

# constant name -> (notebook, regular expression whose one group is the printed percentage)
CH6_TEST = r"test accuracy on [\d,]+ images, mean \(min–max\) over seeds .*?\n(?:.*\n)*?"
# Chapter 7 prints its validation table first, with the same row names.
CH7_TEST = r"test accuracy on [\d,]+ images after .*?\n(?:.*\n)*?"
CH8_TEST = CH6_TEST  # chapter 8 prints its test table as chapter 6 does
QUOTES = {
    "MLP_TEST_ACCURACY": ("02_mnist_mlp.ipynb", r"test accuracy:\s+([\d.]+) %"),
    "CNN_TEST_ACCURACY": ("03_mnist_cnn.ipynb", r"test accuracy ([\d.]+)%"),
    "RESNET20_CH5_TEST_ACCURACY": ("05_resnet.ipynb", r"ResNet-20: test accuracy ([\d.]+) %"),
    "RESNET56_CH5_TEST_ACCURACY": ("05_resnet.ipynb", r"ResNet-56: test accuracy ([\d.]+) %"),
    "RESNET20_CH6_TEST_ACCURACY": ("06_mobilenet_v1.ipynb", CH6_TEST + r"ResNet-20\s+([\d.]+) %"),
    "MOBILENET_V1_TEST_ACCURACY": (
        "06_mobilenet_v1.ipynb",
        CH6_TEST + r"MobileNetV1\s+([\d.]+) %",
    ),
    "MOBILENET_V2_ROADMAP_RECIPE_TEST_ACCURACY": (
        "07_mobilenet_v2_cifar.ipynb",
        CH7_TEST + r"roadmap\s+([\d.]+) %",
    ),
    "MOBILENET_V2_COURSE_RECIPE_TEST_ACCURACY": (
        "07_mobilenet_v2_cifar.ipynb",
        CH7_TEST + r"course\s+([\d.]+) %",
    ),
    "MOBILENET_V3_SMALL_TEST_ACCURACY": (
        "08_mobilenet_v3.ipynb",
        CH8_TEST + r"V3-Small\s+([\d.]+) %",
    ),
    "MOBILENET_V3_LARGE_TEST_ACCURACY": (
        "08_mobilenet_v3.ipynb",
        CH8_TEST + r"V3-Large\s+([\d.]+) %",
    ),
}


def printed(notebook_name: str, pattern: str) -> float:
    """The number that ``pattern`` (one group) finds first in a committed chapter's outputs."""
    notebook = json.loads((ROOT / "notebooks" / notebook_name).read_text())
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", "")) or "".join(
                output.get("data", {}).get("text/plain", "")
            )
            found = re.search(pattern, text)
            if found:
                return float(found.group(1))
    raise AssertionError(f"{notebook_name} prints nothing that matches {pattern!r}")


@pytest.mark.parametrize("constant", sorted(QUOTES))
def test_quoted_accuracy_is_what_the_chapter_prints(constant):
    notebook_name, pattern = QUOTES[constant]
    quoted = getattr(compare, constant)
    assert quoted is not None, f"{constant} is None but {notebook_name} has a result"
    assert round(100 * quoted, 2) == printed(notebook_name, pattern), (
        f"{constant} = {quoted} differs from the test accuracy {notebook_name} prints"
    )


def test_the_chapter_6_pattern_reads_the_test_table_not_the_validation_table():
    # Chapter 6 prints a validation table first, with the same row names: the pattern must
    # skip it (42.37 % is ResNet-20's validation mean, 42.79 % its test mean).
    _, pattern = QUOTES["RESNET20_CH6_TEST_ACCURACY"]
    assert printed("06_mobilenet_v1.ipynb", r"ResNet-20\s+([\d.]+) %") != printed(
        "06_mobilenet_v1.ipynb", pattern
    )


def test_every_part_ii_entry_quotes_a_constant_with_its_source():
    values = {getattr(compare, name) for name in QUOTES}
    for entry in compare.PART_II:
        assert entry.dataset == "CIFAR-10" and entry.input_size == (3, 32, 32)
        assert entry.accuracy in values, f"{entry.name}: accuracy {entry.accuracy} not quoted"
        assert entry.accuracy_source.startswith("chapter ")
        if entry.accuracy is not None:
            # A number without its setup cannot be compared with another: say which setup.
            assert "standard budget, test" in entry.accuracy_source
            assert "subset" in entry.accuracy_source and "epochs" in entry.accuracy_source


def test_part_ii_names_are_unique_and_build_cifar_models():
    names = [entry.name for entry in compare.PART_II]
    assert len(names) == len(set(names))
    table = compare.comparison_table(compare.PART_II[:2], latency_repeats=0)
    assert table.row("ResNet-20 (ch. 5)").params == 269_722
