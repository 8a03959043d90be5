"""Test suite of the OCI Anthropic gateway."""
