"""The deployment's checkpoint signing keys: files in a directory, never in ClickHouse.

`<keys dir>/<key_id>.key` holds a private key (PKCS#8 PEM, mode 0600) and `<key_id>.pub` its raw
public key in hex; `current` names the key that signs new checkpoints. Rotating makes a new key
current and keeps the old public keys, so old checkpoints still verify; `retire` deletes an old
private key (its public key stays). The directory is `TRILHA_CHECKPOINT_KEYS_DIR`, by default
`<data-dir>/keys` (mode 0700).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.proofs.signing import key_id
from services.runtime.settings import ConfigError, Settings


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    public_key: str  # raw 32 bytes, hex
    current: bool

    def as_json(self) -> dict[str, object]:
        return {"key_id": self.key_id, "algorithm": "Ed25519", "public_key": self.public_key, "current": self.current}


def keys_dir(settings: Settings) -> Path:
    return Path(settings.checkpoint_keys_dir or Path(settings.data_dir) / "keys")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def create(directory: Path) -> str:
    """A new key, made current; returns its id."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    kid = key_id(key.public_key())
    _write_private(directory / f"{kid}.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (directory / f"{kid}.pub").write_text(key.public_key().public_bytes_raw().hex() + "\n")
    tmp = directory / "current.tmp"
    tmp.write_text(kid + "\n")
    tmp.replace(directory / "current")
    return kid


def current(directory: Path, create_if_missing: bool = True) -> tuple[str, Ed25519PrivateKey]:
    """The signing key (made on first use: one per deployment)."""
    marker = directory / "current"
    if not marker.exists():
        if not create_if_missing:
            raise ConfigError(f"no checkpoint key in {directory}: run `trilha keys rotate` to make one")
        create(directory)
    kid = marker.read_text().strip()
    path = directory / f"{kid}.key"
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"{path} can be read by others: chmod 600 it")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key")
    return kid, key


def public_keys(directory: Path) -> list[PublicKey]:
    """Every public key ever used here (current first), for verifiers."""
    marker = directory / "current"
    now = marker.read_text().strip() if marker.exists() else ""
    found = [PublicKey(p.stem, p.read_text().strip(), p.stem == now) for p in sorted(directory.glob("*.pub"))]
    return sorted(found, key=lambda k: not k.current)


def retire(directory: Path, kid: str) -> None:
    """Delete an old private key; its public key stays so its checkpoints still verify."""
    if (directory / "current").read_text().strip() == kid:
        raise ConfigError(f"{kid} is the current key: rotate first, then retire it")
    (directory / f"{kid}.key").unlink(missing_ok=True)
