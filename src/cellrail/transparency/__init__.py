"""Transparency-log machinery for the custody ledger: RFC 9162 Merkle trees, C2SP signed checkpoints, proofs.

``verifier`` and ``note`` depend only on hashlib and ``cryptography``, so an auditor can check proofs offline
without trusting (or installing) the rest of CellRail.
"""
