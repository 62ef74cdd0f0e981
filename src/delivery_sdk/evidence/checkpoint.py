"""Signed checkpoints: a log's tree head in the C2SP ``tlog-checkpoint`` format, signed as a C2SP ``signed-note``.

A signed checkpoint reads::

    delivery-sdk.example/court-1234        <- origin: names the log; SHOULD equal the key name
    1048576                                <- tree size, decimal
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=   <- base64 root hash
                                           <- blank line
    — delivery-sdk.example/court-1234 <base64(4-byte key id || 64-byte Ed25519 signature)>

The signature covers the note text (the three lines and any extension lines, each with its newline), so
transparency-dev tooling (``golang.org/x/mod/sumdb/note``, ``transparency-dev/formats/log``) reads and
checks it. During a key rotation a checkpoint carries one signature line per key; a verifier accepts any
key it trusts and ignores the others (:func:`delivery_sdk.evidence.verify.open_checkpoint`).
"""

from __future__ import annotations

from collections.abc import Sequence

from .._exceptions import ValidationError
from .keys import Signer
from .verify import Checkpoint, Note, NoteSignature, VerificationError, parse_note

__all__ = ["Checkpoint", "cosign", "sign_checkpoint", "sign_note"]


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """A signed note: ``text`` (ending in a newline), a blank line, one signature line per signer."""
    if not signers:
        raise ValidationError("a signed note needs at least one signer")
    if not text.endswith("\n") or any(ch < " " and ch != "\n" for ch in text):
        raise ValidationError("note text ends with a newline and holds no control characters but newlines")
    message = text.encode("utf-8")
    sigs = tuple(NoteSignature(s.name, s.key_id, s.sign(message)) for s in signers)
    return str(Note(text, sigs))


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[Signer]) -> str:
    """The signed note of ``checkpoint``, one signature per signer (old and new key during a rotation)."""
    return sign_note(checkpoint.body(), signers)


def cosign(signed_note: str, signers: Sequence[Signer]) -> str:
    """Add signatures to an already signed note (a witness, or a new key), keeping the ones it has.

    A signer whose key already signed the note is skipped.
    """
    try:
        note = parse_note(signed_note)
    except VerificationError as exc:
        raise ValidationError(f"not a signed note: {exc}") from exc
    have = {(s.name, s.key_id) for s in note.signatures}
    message = note.text.encode("utf-8")
    added = tuple(NoteSignature(s.name, s.key_id, s.sign(message)) for s in signers if (s.name, s.key_id) not in have)
    return str(Note(note.text, note.signatures + added))
