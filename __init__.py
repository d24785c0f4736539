"""session-kit: generate production-grade session management you own, and upgrade it safely."""

__version__ = "0.2.0"
