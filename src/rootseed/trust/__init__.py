"""Container signatures: the signed payload, the GnuPG boundary, storage, and the quorum.

- :mod:`.payload` builds and strictly parses the "atomic container signature" JSON.
- :mod:`.gpg` is the only module that talks to GnuPG; it turns signature files into
  :class:`~rootseed.trust.facts.SignatureFacts`.
- :mod:`.store` is the on-disk layout (``<registry>/<stage>-<name>@sha256=<hex>/signature-N``,
  the containers/image "lookaside" layout).
- :mod:`.quorum` decides trust from facts alone: no I/O, easy to audit.
"""
