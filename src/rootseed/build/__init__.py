"""Execute a package's Containerfile in sandboxes and write a deterministic OCI image."""
