"""Process settings from the environment (pydantic-settings).

Contract: only process-level knobs live here (where the config file is, where to listen, log
level, workers). Everything about models and OCI is in the config file (:mod:`app.config`).
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    config: str = "config/gateway.yaml"
    host: str = "0.0.0.0"
    port: int = 8000
    log_level: str = "INFO"
    #: overrides ``oci.endpoint`` of the config file (compose points it at the emulator)
    oci_endpoint: str | None = None
    #: seconds between checks of the config and keys files for changes (0 disables)
    reload_interval: float = 2.0
    #: seconds in-flight streams may run after SIGTERM (gunicorn's graceful_timeout too)
    graceful_timeout: float = 600.0
