"""Proofs for auditors: RFC 9162 Merkle tree over every stored record, signed checkpoints,
inclusion and consistency proofs, offline verification, audit and LGPD erasure (see README, "Proofs")."""
