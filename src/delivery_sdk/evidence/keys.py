"""Ed25519 signing keys for checkpoints, in the note key format of ``golang.org/x/mod/sumdb/note``.

- Signer key (secret): ``PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 || 32-byte seed)>``.
- Verifier key (public, given to courts, parties and witnesses):
  ``<name>+<key id hex>+<base64(0x01 || 32-byte public key)>``.
- Key id: the first 4 bytes of ``SHA-256(name || 0x0A || 0x01 || public key)`` (C2SP signed-note).

Keys come from :func:`generate_key`, a file (:func:`load_signers` with ``path``) or an environment variable
(``DELIVERY_SDK_EVIDENCE_KEY`` by default). A file or variable may hold several signer keys, one per line:
during a **rotation** every checkpoint is signed by the old and the new key, so verifiers that trust
either accept it; once every verifier trusts the new key the old line is removed. A signer key is never
shown in a ``repr`` or an error message.

``cryptography`` is imported when a key is made or used, not when this module is imported.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .._exceptions import ValidationError
from .verify import ED25519_ALG, VerifierKey, _valid_name

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["DEFAULT_KEY_ENV", "Signer", "generate_key", "load_signers"]

DEFAULT_KEY_ENV = "DELIVERY_SDK_EVIDENCE_KEY"
_PREFIX = "PRIVATE+KEY+"


def _private_key(seed: bytes) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed)


def _public_bytes(key: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


class Signer:
    """An Ed25519 note signer: a key name, its key id and the private key."""

    __slots__ = ("_key", "name", "verifier_key")

    def __init__(self, name: str, seed: bytes) -> None:
        if not _valid_name(name):
            raise ValidationError(f"key name {name!r} must be non-empty, without spaces or '+'")
        if len(seed) != 32:
            raise ValidationError("an Ed25519 seed is 32 bytes")
        self._key = _private_key(seed)
        self.name = name
        self.verifier_key = VerifierKey.from_public_key(name, _public_bytes(self._key))

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A new signer named ``name`` with a fresh random Ed25519 key."""
        return cls(name, os.urandom(32))

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        """Read ``PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 || seed)>``; the key id must match."""
        text = skey.strip()
        if not text.startswith(_PREFIX):
            raise ValidationError("a signer key starts with PRIVATE+KEY+")
        parts = text[len(_PREFIX) :].split("+", 2)
        if len(parts) != 3 or len(parts[1]) != 8:
            raise ValidationError("a signer key reads PRIVATE+KEY+<name>+<key id hex>+<base64 seed>")
        name, hex_id, b64 = parts
        try:
            kid = int(hex_id, 16)
            raw = base64.b64decode(b64.encode("ascii"), validate=True)
        except (ValueError, binascii.Error):
            raise ValidationError("malformed signer key: bad key id or base64") from None
        if len(raw) != 33 or raw[0] != ED25519_ALG:
            raise ValidationError("only Ed25519 signer keys (0x01 || 32-byte seed) are supported")
        signer = cls(name, raw[1:])
        if signer.key_id != kid:
            raise ValidationError(f"signer key {name!r}: the key id does not match the key")
        return signer

    @property
    def key_id(self) -> int:
        """The key id of the signer's verifier key (C2SP signed-note key id)."""
        return self.verifier_key.key_id

    @property
    def vkey(self) -> str:
        """The public verifier key to hand out."""
        return str(self.verifier_key)

    def skey(self) -> str:
        """The secret signer key text (store it like a password: a file readable only by the service)."""
        from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        encoded = base64.b64encode(bytes([ED25519_ALG]) + seed).decode("ascii")
        return f"{_PREFIX}{self.name}+{self.key_id:08x}+{encoded}"

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"Signer({self.name!r}, key_id={self.key_id:08x})"


def generate_key(name: str) -> tuple[str, str]:
    """A new key pair for the log named ``name``: ``(signer key, verifier key)``."""
    signer = Signer.generate(name)
    return signer.skey(), signer.vkey


def load_signers(
    *, path: str | os.PathLike[str] | None = None, env: str = DEFAULT_KEY_ENV, environ: Mapping[str, str] | None = None
) -> list[Signer]:
    """Signer keys from the file at ``path`` if given, else from the environment variable ``env``.

    One key per line; blank lines and lines starting with ``#`` are skipped. Several keys mean a
    rotation: every checkpoint gets a signature from each.
    """
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValidationError(f"cannot read the signer key file {os.fspath(path)!r}: {exc.strerror}") from None
        where = f"file {os.fspath(path)!r}"
    else:
        value = (os.environ if environ is None else environ).get(env)
        if not value:
            raise ValidationError(f"no signer key: set {env} or give a key file")
        text, where = value, f"${env}"
    signers = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            signers.append(Signer.from_skey(line))
        except ValidationError as exc:
            raise ValidationError(f"{where}, line {number}: {exc}") from None
    if not signers:
        raise ValidationError(f"no signer key in {where}")
    names = [(s.name, s.key_id) for s in signers]
    if len(set(names)) != len(names):
        raise ValidationError(f"{where} lists the same key twice")
    return signers
