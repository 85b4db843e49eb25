"""Completeness per gateway: which of a gateway's numbered records are stored, and the gaps."""
