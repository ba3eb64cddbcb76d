"""Veilchain: anonymized face data sets, encrypted, pinned to IPFS and anchored on Ethereum."""

__version__ = "0.1.0"
