"""Tests of the shared process harness (``devtools/``)."""
