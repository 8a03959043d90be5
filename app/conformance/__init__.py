"""The live conformance suite (``python -m app conformance``): scenarios through the real gateway
against the configured OCI upstream, a pass/fail matrix, and cassettes of what OCI answered.

Modules: :mod:`.runner` (CLI, the in-process gateway, the matrix), :mod:`.scenarios` (what is
sent and checked), :mod:`.stream_check` (answer invariants), :mod:`.record` (the OCI tap and
cassettes), :mod:`.report` (text and JSON). ``data/`` holds the Claude Code request it replays.
"""
