"""Tests of the OCI emulator (``emulator/``) itself, over real HTTP."""
