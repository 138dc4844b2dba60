"""The command line's value types (argparse ``type=``): a number or a rate read and
checked, or an ``ArgumentTypeError`` that argparse shows beside the flag's name."""

from __future__ import annotations

import argparse

from .config import RateLimit


def megabytes(text: str) -> int:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return int(value * 1024 * 1024)


def positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def rate(text: str) -> RateLimit:
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
