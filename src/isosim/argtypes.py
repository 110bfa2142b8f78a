"""Argument types of the ``isosim`` command line: numbers with the ranges they need.

argparse reports a value these reject as ``argument --samples: expected ...`` with the
usage line and exit code 2, before anything is read or run. (``float`` alone would take
``nan``, ``inf`` and negative numbers, which then fail far from the command line.)
"""

import argparse
import math


def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def nonnegative_float(text):
    """A finite number >= 0 (seconds between progress lines or checkpoints; 0: never)."""
    x = _number(text, float)
    if not (math.isfinite(x) and x >= 0):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite number >= 0")
    return x


def positive_float(text):
    """A finite number > 0 (a tolerance)."""
    x = _number(text, float)
    if not (math.isfinite(x) and x > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite number > 0")
    return x


def int_at_least(low):
    """An argparse type: a whole number >= ``low``."""
    def parse(text):
        n = _number(text, int)
        if n < low:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= {low}")
        return n
    parse.__name__ = f"int_at_least_{low}"
    return parse


nonnegative_int = int_at_least(0)
