"""rmuzero.validation: the predicates and checks every module's settings are validated with."""

import numpy as np
import pytest

from rmuzero.validation import check_int, check_real, is_int, is_real


def test_numbers_of_either_kind_but_never_a_bool():
    assert is_int(3) and is_int(np.int64(3)) and not is_int(3.0) and not is_int(True) and not is_int("3")
    assert is_real(3) and is_real(0.5) and is_real(np.float32(0.5)) and not is_real(False) and not is_real(None)


def test_checks_raise_one_line_naming_value_and_what_is_valid():
    check_int("n", 0, minimum=0)
    with pytest.raises(ValueError, match=r"^system\.n=0; valid: an integer >= 1$"):
        check_int("system.n", 0)
    check_real("p", 1.0, 0.0, 1.0)
    with pytest.raises(KeyError, match=r"p=0\.0; valid: a number in \(0\.0, 1\.0\]"):
        check_real("p", 0.0, 0.0, 1.0, open_low=True, error=KeyError)
    with pytest.raises(ValueError, match=r"^p=True; valid: a number in \[0\.0, 1\.0\]$"):
        check_real("p", True, 0.0, 1.0)
