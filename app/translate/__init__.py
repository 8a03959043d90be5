"""Pure translation between the Anthropic Messages API and OCI Generative AI chat (no I/O).

Contract: requests go out through :func:`app.translate.to_oci.to_oci` (one dispatch on the
model's wire format, over the shared pieces of :mod:`.request`); answers come back through one
state machine, :class:`app.translate.stream.StreamTranslator`, for streams and (by folding its
output, :mod:`.from_oci`) for JSON answers alike. Only wire models, catalog specs and errors are
imported; the layout is described in docs/design.md ("translate/ and catalog/").
"""
