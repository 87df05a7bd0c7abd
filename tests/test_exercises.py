"""mnlib.exercises.self_check: what a student reads, and when a failing check raises."""

import pytest

from mnlib import exercises


@pytest.fixture
def lenient(monkeypatch):
    """No grader, no strict mode: the way a student runs a notebook."""
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("MNLIB_STRICT_CHECKS", raising=False)
    return monkeypatch


def passing() -> None:
    assert 1 + 1 == 2


def not_attempted() -> None:
    raise NotImplementedError()


# Raised by hand, not with `assert`: pytest rewrites asserts in test modules and would change
# the message that self_check prints.
def wrong() -> None:
    raise AssertionError("1 + 1 should be 2")


def test_a_passing_check_prints_passed(lenient, capsys):
    assert exercises.self_check("1.1", passing) is True
    assert capsys.readouterr().out == "Exercise 1.1: passed.\n"


def test_an_unwritten_solution_is_not_attempted_yet(lenient, capsys):
    assert exercises.self_check("1.2", not_attempted) is False
    out = capsys.readouterr().out
    assert out.startswith("Exercise 1.2: not attempted yet")


def test_a_wrong_answer_prints_the_assertion_message(lenient, capsys):
    assert exercises.self_check("1.3", wrong) is False
    assert capsys.readouterr().out == "Exercise 1.3: not yet: 1 + 1 should be 2\n"


def test_an_assert_without_message_still_says_what_failed(lenient, capsys):
    def bare() -> None:
        raise AssertionError()

    assert exercises.self_check("1.4", bare) is False
    assert capsys.readouterr().out == "Exercise 1.4: not yet: an assertion failed\n"


def test_other_errors_are_not_hidden(lenient):
    def broken() -> None:
        raise TypeError("a bug in the solution")

    with pytest.raises(TypeError, match="a bug in the solution"):
        exercises.self_check("1.5", broken)


@pytest.mark.parametrize("variable", ["NBGRADER_EXECUTION", "MNLIB_STRICT_CHECKS"])
def test_failures_raise_under_nbgrader_and_in_strict_mode(lenient, capsys, variable):
    lenient.setenv(variable, "1")
    with pytest.raises(AssertionError, match="1 \\+ 1 should be 2"):
        exercises.self_check("2.1", wrong)
    with pytest.raises(NotImplementedError):
        exercises.self_check("2.2", not_attempted)
    assert exercises.self_check("2.3", passing) is True
    # The student still reads the line before the cell fails.
    assert "Exercise 2.1: not yet: 1 + 1 should be 2" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["0", "false", ""])
def test_strict_mode_can_be_switched_off_explicitly(lenient, value):
    lenient.setenv("MNLIB_STRICT_CHECKS", value)
    assert exercises.self_check("3.1", wrong) is False


def test_an_unknown_strict_value_is_an_error(lenient):
    lenient.setenv("MNLIB_STRICT_CHECKS", "maybe")
    with pytest.raises(ValueError, match="MNLIB_STRICT_CHECKS='maybe'"):
        exercises.self_check("3.2", wrong)
