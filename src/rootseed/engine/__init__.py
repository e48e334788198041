"""Execute a package's Containerfile in sandboxes and write a deterministic OCI image.

``engine`` runs builds; ``record`` holds the facts provenance reads. Import the module you
need: this package imports nothing itself, so ``record`` stays free of the engine (which
writes provenance) and there is no import cycle.
"""
