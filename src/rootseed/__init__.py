"""rootseed: grow a complete, verifiable toolchain from a 181-byte seed."""

__version__ = "0.1.0"
