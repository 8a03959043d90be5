"""The model catalog: per-model behaviour profiles (:mod:`.profiles`), model specs
(:mod:`.spec`) and name resolution (:mod:`.catalog`).

Contract: ``app.catalog`` re-exports the names the rest of the gateway uses. It depends only on
:mod:`app.errors` and pydantic, never on ``config.py`` or ``translate/`` (they depend on it).
"""

from app.catalog.catalog import Catalog, CatalogSource, Resolved
from app.catalog.profiles import ModelProfile, ProfileOverrides, table_profile
from app.catalog.spec import ApiFormat, Capability, ModelSpec, Target, Upstream

__all__ = [
    "ApiFormat",
    "Capability",
    "Catalog",
    "CatalogSource",
    "ModelProfile",
    "ModelSpec",
    "ProfileOverrides",
    "Resolved",
    "Target",
    "Upstream",
    "table_profile",
]
