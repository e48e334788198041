"""Chain of custody: in-toto/SLSA provenance statements, the trace back to the seed, the report."""
