"""Shared test harness for tfface layers, losses and backbones."""

from tfface.testing.test_case import TestCase

__all__ = [
    "TestCase",
]
