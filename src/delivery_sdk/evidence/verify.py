"""A standalone verifier for delivery-sdk evidence: Merkle proofs, event leaves and signed checkpoints.

This module imports nothing but the standard library (``hashlib``, ``base64``, ``json``, ``dataclasses``),
so a court, a party or an auditor can copy this one file and check a proof without installing
delivery-sdk or trusting its database. Checking a checkpoint's Ed25519 signature needs the
``cryptography`` package, imported only when a signature is checked.

What it checks (see ``docs/evidence.md``):

- **Hashes** (RFC 9162 §2.1): leaf hash ``SHA-256(0x00 || leaf input)``, node hash
  ``SHA-256(0x01 || left || right)``, the root of the empty tree ``SHA-256("")``.
- **Inclusion proofs** (RFC 9162 §2.1.3.2): the leaf at ``leaf_index`` is in the tree of ``tree_size``
  leaves whose root is ``root``.
- **Consistency proofs** (RFC 9162 §2.1.4.2): the tree of ``size1`` leaves is a prefix of the tree of
  ``size2`` leaves, i.e. nothing before ``size1`` was changed, removed or reordered.
- **Event leaves**: :func:`event_leaf_input` recomputes the versioned canonical bytes of a committed
  event from its JSON form (the encoding is specified there).
- **Checkpoints** (C2SP ``tlog-checkpoint`` in a C2SP ``signed-note``): the origin, tree size and root
  hash, signed with Ed25519 by one or more keys given as verifier keys
  ``<name>+<key id hex>+<base64(0x01 || public key)>``.

Every failure raises :class:`VerificationError` (a ``ValueError``) saying what did not match.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_INPUT_PREFIX",
    "Checkpoint",
    "ConsistencyProof",
    "InclusionProof",
    "Note",
    "NoteSignature",
    "VerificationError",
    "VerifierKey",
    "event_leaf_input",
    "key_id",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "parse_note",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
    "verify_note",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
ED25519_ALG = 0x01
MAX_SIGNATURES = 100  # the Go reference refuses more; the C2SP spec asks to accept at least 16
EM_DASH = "\u2014"

#: The leaf input of a committed event starts with this line; the number is the encoding's version.
LEAF_INPUT_PREFIX = b"delivery-sdk/event/v1\n"

_sha256 = hashlib.sha256


class VerificationError(ValueError):
    """A proof, a leaf, a note or a checkpoint does not verify, or cannot be read."""


# --- hashes (RFC 9162 §2.1.1) ------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf input."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return _sha256(b"\x01" + left + right).digest()


def _check_hash(what: str, value: bytes) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise VerificationError(f"{what} must be {HASH_SIZE} bytes, got {_describe(value)}")


def _describe(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return f"{len(value)} bytes"
    return type(value).__name__


def _check_size(what: str, value: int) -> None:
    if type(value) is not int or value < 0:
        raise VerificationError(f"{what} must be a non-negative integer, got {value!r}")


# --- inclusion (RFC 9162 §2.1.3.2) -------------------------------------------------------------------------


def root_from_inclusion_proof(leaf_index: int, tree_size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """The root that ``path`` proves ``leaf`` (a leaf *hash*) at ``leaf_index`` to be under.

    Raises :class:`VerificationError` when the path has the wrong length for the index and size.
    """
    _check_size("leaf_index", leaf_index)
    _check_size("tree_size", tree_size)
    if leaf_index >= tree_size:
        raise VerificationError(f"leaf index {leaf_index} is outside a tree of {tree_size} leaves")
    _check_hash("the leaf hash", leaf)
    fn, sn, r = leaf_index, tree_size - 1, bytes(leaf)
    for i, p in enumerate(path):
        _check_hash(f"inclusion path element {i}", p)
        if sn == 0:
            raise VerificationError(f"inclusion path too long: {len(path)} hashes for leaf {leaf_index} of {tree_size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(f"inclusion path too short: {len(path)} hashes for leaf {leaf_index} of {tree_size}")
    return r


def verify_inclusion(leaf_index: int, tree_size: int, leaf: bytes, path: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf`` (a leaf hash) is at ``leaf_index`` in the tree of ``tree_size`` leaves with ``root``."""
    _check_hash("the root", root)
    computed = root_from_inclusion_proof(leaf_index, tree_size, leaf, path)
    if computed != root:
        raise VerificationError(
            f"inclusion proof for leaf {leaf_index} of {tree_size} leads to root {computed.hex()}, "
            f"not the expected {bytes(root).hex()}"
        )


# --- consistency (RFC 9162 §2.1.4.2) -----------------------------------------------------------------------


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, path: Sequence[bytes]) -> None:
    """Check that the tree of ``size1`` leaves with ``root1`` is a prefix of the tree of ``size2`` with ``root2``.

    Sizes 0 and equal sizes need an empty path (and, for equal sizes, equal roots; for size 0 the empty
    root). A log that rewrote anything before ``size1`` cannot produce a path that passes.
    """
    _check_size("size1", size1)
    _check_size("size2", size2)
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    for i, p in enumerate(path):
        _check_hash(f"consistency path element {i}", p)
    if size1 > size2:
        raise VerificationError(f"size1 {size1} is larger than size2 {size2}: a log never shrinks")
    if size1 == size2:
        if path:
            raise VerificationError("a consistency proof between equal sizes must be empty")
        if root1 != root2:
            raise VerificationError(f"two different roots for the same tree size {size1}: the log forked")
        return
    if size1 == 0:
        if path:
            raise VerificationError("a consistency proof from the empty tree must be empty")
        if root1 != EMPTY_ROOT:
            raise VerificationError("the root of the empty tree must be SHA-256 of the empty string")
        return
    if not path:
        raise VerificationError(f"empty consistency proof between sizes {size1} and {size2}")
    proof = list(path)
    if size1 & (size1 - 1) == 0:  # an exact power of 2: the old root is itself a node of the new tree
        proof.insert(0, bytes(root1))
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise VerificationError(f"consistency proof too long for sizes {size1} and {size2}")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(f"consistency proof too short for sizes {size1} and {size2}")
    if fr != root1:
        raise VerificationError(f"consistency proof does not lead to the old root at size {size1}")
    if sr != root2:
        raise VerificationError(f"consistency proof does not lead to the new root at size {size2}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(what: str, text: Any) -> bytes:
    if not isinstance(text, str):
        raise VerificationError(f"{what} must be a base64 string, got {type(text).__name__}")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise VerificationError(f"{what} is not valid base64") from exc


def _int_field(data: Any, name: str) -> int:
    if not isinstance(data, dict):
        raise VerificationError(f"a proof must be a JSON object, got {type(data).__name__}")
    value = data.get(name)
    if type(value) is not int or value < 0:
        raise VerificationError(f"proof field {name!r} must be a non-negative integer, got {value!r}")
    return value


def _path_field(data: dict[str, Any]) -> tuple[bytes, ...]:
    items = data.get("path")
    if not isinstance(items, list):
        raise VerificationError("proof field 'path' must be a JSON array of base64 hashes")
    return tuple(_unb64(f"path[{i}]", item) for i, item in enumerate(items))


@dataclass(frozen=True)
class InclusionProof:
    """An audit path (RFC 9162 §2.1.3.1), ordered from the leaf up. JSON form: base64 hashes."""

    leaf_index: int
    tree_size: int
    path: tuple[bytes, ...]

    def verify(self, leaf: bytes, root: bytes) -> None:
        """Check that ``leaf`` is in the tree with root ``root``; raise :class:`VerificationError` if not."""
        verify_inclusion(self.leaf_index, self.tree_size, leaf, self.path, root)

    def to_dict(self) -> dict[str, Any]:
        """The proof as JSON-ready data (hashes in base64)."""
        return {"leaf_index": self.leaf_index, "tree_size": self.tree_size, "path": [_b64(p) for p in self.path]}

    @classmethod
    def from_dict(cls, data: Any) -> InclusionProof:
        """Read a proof from :meth:`to_dict`'s form; raise :class:`VerificationError` when malformed."""
        return cls(_int_field(data, "leaf_index"), _int_field(data, "tree_size"), _path_field(data))


@dataclass(frozen=True)
class ConsistencyProof:
    """A consistency proof (RFC 9162 §2.1.4.1) between two tree sizes. JSON form: base64 hashes."""

    size1: int
    size2: int
    path: tuple[bytes, ...]

    def verify(self, root1: bytes, root2: bytes) -> None:
        """Check that the tree with root ``root1`` is a prefix of the one with ``root2``; raise
        :class:`VerificationError` if not."""
        verify_consistency(self.size1, self.size2, root1, root2, self.path)

    def to_dict(self) -> dict[str, Any]:
        """The proof as JSON-ready data (hashes in base64)."""
        return {"size1": self.size1, "size2": self.size2, "path": [_b64(p) for p in self.path]}

    @classmethod
    def from_dict(cls, data: Any) -> ConsistencyProof:
        """Read a proof from :meth:`to_dict`'s form; raise :class:`VerificationError` when malformed."""
        return cls(_int_field(data, "size1"), _int_field(data, "size2"), _path_field(data))


# --- event leaves --------------------------------------------------------------------------------------------


def event_leaf_input(seq: int, task_seq: int, event: dict[str, Any]) -> bytes:
    """The leaf input of a committed event, version 1; its leaf hash is ``leaf_hash(event_leaf_input(...))``.

    The bytes are ``LEAF_INPUT_PREFIX`` (``b"delivery-sdk/event/v1\\n"``) followed by the UTF-8 encoding of
    the JSON object ``{"event": <event>, "seq": <seq>, "task_seq": <task_seq>}`` written with keys sorted
    at every level, no whitespace (``,`` and ``:`` as separators), non-ASCII text unescaped, and numbers
    and strings as Python's ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    allow_nan=False)`` writes them. ``event`` is the event's wire JSON (its ``"type"`` tag included), as
    the store and proof bundles hold it; ``seq`` is its place in the whole store, ``task_seq`` in its task.
    """
    if type(seq) is not int or type(task_seq) is not int:
        raise VerificationError("seq and task_seq must be integers")
    if not isinstance(event, dict):
        raise VerificationError(f"an event must be a JSON object, got {type(event).__name__}")
    record = {"event": event, "seq": seq, "task_seq": task_seq}
    try:
        text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return LEAF_INPUT_PREFIX + text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError (lone surrogates) is a ValueError
        raise VerificationError(f"the event cannot be encoded canonically: {exc}") from exc


# --- signed notes (C2SP signed-note) -------------------------------------------------------------------------


def key_id(name: str, public_key: bytes, alg: int = ED25519_ALG) -> int:
    """``SHA-256(name || 0x0A || alg || public key)[:4]`` as a big-endian integer (C2SP signed-note)."""
    digest = _sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


@dataclass(frozen=True)
class VerifierKey:
    """A trusted Ed25519 key: ``<name>+<key id, 8 hex digits>+<base64(0x01 || 32-byte public key)>``."""

    name: str
    key_id: int
    public_key: bytes = field(repr=False)

    @classmethod
    def parse(cls, vkey: str) -> VerifierKey:
        """Parse a verifier key ``<name>+<key id hex>+<base64 key>``; raise :class:`VerificationError` when
        malformed."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise VerificationError("a verifier key reads <name>+<key id hex>+<base64 key>")
        name, hex_id, b64 = parts
        if not _valid_name(name) or len(hex_id) != 8:
            raise VerificationError("malformed verifier key: bad name or key id")
        try:
            kid = int(hex_id, 16)
        except ValueError as exc:
            raise VerificationError("malformed verifier key: the key id is not hexadecimal") from exc
        raw = _unb64("the verifier key", b64)
        if len(raw) != 33 or raw[0] != ED25519_ALG:
            raise VerificationError("only Ed25519 verifier keys (0x01 || 32 bytes) are supported")
        if key_id(name, raw[1:]) != kid:
            raise VerificationError(f"verifier key {name!r}: the key id does not match the key")
        return cls(name, kid, raw[1:])

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> VerifierKey:
        """The verifier key of a 32-byte Ed25519 public key under ``name`` (its key id computed)."""
        if not _valid_name(name):
            raise VerificationError(f"key name {name!r} must be non-empty, without spaces or '+'")
        if len(public_key) != 32:
            raise VerificationError("an Ed25519 public key is 32 bytes")
        return cls(name, key_id(name, public_key), bytes(public_key))

    def __str__(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{_b64(bytes([ED25519_ALG]) + self.public_key)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message`` (needs ``cryptography``)."""
        try:
            from cryptography.exceptions import InvalidSignature
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise VerificationError("checking Ed25519 signatures needs the 'cryptography' package") from exc
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note: the signer's name, key id and signature."""

    name: str
    key_id: int
    signature: bytes = field(repr=False)  # without the 4-byte key id

    def line(self) -> str:
        """The signature as a signed note's line (``— name base64(key id + signature)``)."""
        return f"{EM_DASH} {self.name} {_b64(self.key_id.to_bytes(4, 'big') + self.signature)}\n"


@dataclass(frozen=True)
class Note:
    """A parsed signed note: ``text`` (ending in a newline) and its signature lines, not yet verified."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __str__(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


def parse_note(data: str | bytes) -> Note:
    """Split a signed note into its text and signatures (C2SP signed-note); nothing is verified yet."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise VerificationError("a signed note must be UTF-8") from exc
    if any(ch < " " and ch != "\n" for ch in data):
        raise VerificationError("a signed note must not contain control characters other than newline")
    split = data.rfind("\n\n")
    if split < 0:
        raise VerificationError("a signed note needs a blank line before its signatures")
    text, block = data[: split + 1], data[split + 2 :]
    if not block or not block.endswith("\n"):
        raise VerificationError("a signed note ends with signature lines, each ending in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(f"more than {MAX_SIGNATURES} signatures")
    signatures = []
    for line in lines:
        if not line.startswith(EM_DASH + " "):
            raise VerificationError("a signature line starts with an em dash and a space")
        name, _, b64 = line[2:].partition(" ")
        raw = _unb64("a signature", b64)
        if not _valid_name(name) or len(raw) < 5:
            raise VerificationError("malformed signature line")
        signatures.append(NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return Note(text, tuple(signatures))


def verify_note(note: Note | str | bytes, trusted: Iterable[VerifierKey | str]) -> tuple[VerifierKey, ...]:
    """Check a note's signatures against ``trusted`` keys; return the keys whose signature verified.

    As C2SP signed-note requires: signatures by unknown keys are ignored (a rotated-in key or a witness),
    a signature by a trusted key that does not verify rejects the whole note, and a note with no
    verified trusted signature is rejected.
    """
    if not isinstance(note, Note):
        note = parse_note(note)
    keys: dict[tuple[str, int], VerifierKey] = {}
    for k in trusted:
        key = VerifierKey.parse(k) if isinstance(k, str) else k
        keys[(key.name, key.key_id)] = key
    message = note.text.encode("utf-8")
    verified: list[VerifierKey] = []
    for sig in note.signatures:
        signer = keys.get((sig.name, sig.key_id))
        if signer is None or signer in verified:
            continue
        if not signer.verify(message, sig.signature):
            raise VerificationError(f"the signature of trusted key {signer.name}+{signer.key_id:08x} does not verify")
        verified.append(signer)
    if not verified:
        raise VerificationError("no signature by a trusted key")
    return tuple(verified)


# --- checkpoints (C2SP tlog-checkpoint) ----------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: ``origin``, ``size``, ``root`` and optional extension lines (C2SP tlog-checkpoint)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise VerificationError("a checkpoint origin is one non-empty line")
        _check_size("the tree size", self.size)
        _check_hash("the root hash", self.root)
        for ext in self.extensions:
            if not ext or "\n" in ext:
                raise VerificationError("checkpoint extension lines are non-empty single lines")

    def body(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each ending in a newline."""
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Read a checkpoint body (the text of a signed note)."""
        if not text.endswith("\n"):
            raise VerificationError("a checkpoint body ends with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise VerificationError("a checkpoint has an origin, a tree size and a root hash line")
        origin, size_text, root_text, *extensions = lines
        if not size_text.isascii() or not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise VerificationError("the tree size is a decimal number without leading zeroes")
        return cls(origin, int(size_text), _unb64("the root hash", root_text), tuple(extensions))


def open_checkpoint(
    data: str | bytes, trusted: Iterable[VerifierKey | str], *, origin: str | None = None
) -> tuple[Checkpoint, tuple[VerifierKey, ...]]:
    """Parse a signed checkpoint, check it is signed by a trusted key, and return it with the keys that signed.

    When ``origin`` is given, a checkpoint of another log is refused.
    """
    note = parse_note(data)
    checkpoint = Checkpoint.parse(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(f"checkpoint of log {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint, verify_note(note, trusted)
