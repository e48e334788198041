"""Container signatures: the signed payload, OpenPGP boundaries, storage, and the quorum.

- :mod:`.payload` builds the "atomic container signature" JSON and strictly parses it
  (and StageX's legacy 2023-12 .. 2025-05 form, for verification only).
- :mod:`.sequoia` checks signatures in-process with Sequoia's StandardPolicy (pysequoia)
  and turns each file into :class:`~rootseed.trust.facts.SignatureFacts`;
  :mod:`.packets` bounds a signature file before the library inflates it.
- :mod:`.gpg` talks to GnuPG, for signing only (the maintainers' secret keys live there).
- :mod:`.store` is the on-disk layout (``<registry>/<stage>-<name>@sha256=<hex>/signature-N``
  and ``provenance-N``, the containers/image "lookaside" layout), read up to the first gap.
- :mod:`.quorum` decides trust from facts alone, including the algorithm policy: no I/O.
- :mod:`.verify` glues store + Sequoia + quorum for images and their provenance.
"""
