"""HTTP side of proofs: checkpoints, consistency proofs and the public keys (services/proofs)."""
