"""Anthropic Messages request -> OCI ChatDetails: the one dispatch on the model's wire format.

Contract: :func:`to_oci` translates a ``/v1/messages`` or ``count_tokens`` request for the
resolved model into an :class:`~app.translate.request.OciRequest` (the body to sign and send,
plus what the answer translators need), with the format the model's spec names:
:mod:`app.translate.to_oci_generic`, :mod:`app.translate.to_oci_cohere` or
:mod:`app.translate.to_oci_coherev2`. Raises only
:class:`~app.errors.InvalidRequest` (a 400) for requests the model can never accept.
"""

from __future__ import annotations

from app.catalog import Resolved
from app.translate.request import AnthropicRequest, OciRequest
from app.translate.to_oci_cohere import to_oci_cohere
from app.translate.to_oci_coherev2 import to_oci_coherev2
from app.translate.to_oci_generic import to_oci_generic


def to_oci(req: AnthropicRequest, resolved: Resolved, compartment_id: str) -> OciRequest:
    if resolved.spec.format == "COHERE":
        return to_oci_cohere(req, resolved, compartment_id)
    if resolved.spec.format == "COHEREV2":
        return to_oci_coherev2(req, resolved, compartment_id)
    return to_oci_generic(req, resolved, compartment_id)
