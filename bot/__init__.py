"""Scheduled social amplification bot for human-rights campaigns."""

__version__ = "0.1.0"
