"""Performance benchmark of the gateway against the OCI emulator (``python -m bench.run``).

See ``bench/README.md`` for what is measured, how, and how to read the table. Nothing here is
imported by the gateway or the tests.
"""
