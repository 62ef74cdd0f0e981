"""Tamper-evident evidence: every committed event is a leaf of an RFC 9162 Merkle log with signed checkpoints.

- :mod:`.canonical`: the versioned leaf bytes of a committed event.
- :mod:`.merkle`: the append-only tree over a store of perfect-subtree hashes; proofs.
- :mod:`.verify`: the standalone verifier (standard library only; copy the file to check a proof).
- :mod:`.keys` and :mod:`.checkpoint`: Ed25519 note keys and C2SP signed checkpoints.

See ``docs/evidence.md``. ``cryptography`` is imported only when a key is made or a signature checked.
"""

from __future__ import annotations

from .canonical import leaf_bytes, leaf_hashes, stored_event_leaf_hash
from .checkpoint import cosign, sign_checkpoint, sign_note
from .keys import DEFAULT_KEY_ENV, Signer, generate_key, load_signers
from .merkle import (
    CachingNodeStore,
    CompactRange,
    MemoryNodeStore,
    MerkleLog,
    Node,
    NodeKey,
    NodeStore,
    SparseNodeStore,
    consistency_proof,
    inclusion_proof,
    perfect_subtrees,
    root,
)
from .verify import (
    EMPTY_ROOT,
    LEAF_INPUT_PREFIX,
    Checkpoint,
    ConsistencyProof,
    InclusionProof,
    Note,
    NoteSignature,
    VerificationError,
    VerifierKey,
    event_leaf_input,
    leaf_hash,
    node_hash,
    open_checkpoint,
    parse_note,
    verify_consistency,
    verify_inclusion,
    verify_note,
)

__all__ = [
    "DEFAULT_KEY_ENV",
    "EMPTY_ROOT",
    "LEAF_INPUT_PREFIX",
    "CachingNodeStore",
    "Checkpoint",
    "CompactRange",
    "ConsistencyProof",
    "InclusionProof",
    "MemoryNodeStore",
    "MerkleLog",
    "Node",
    "NodeKey",
    "NodeStore",
    "Note",
    "NoteSignature",
    "Signer",
    "SparseNodeStore",
    "VerificationError",
    "VerifierKey",
    "consistency_proof",
    "cosign",
    "event_leaf_input",
    "generate_key",
    "inclusion_proof",
    "leaf_bytes",
    "leaf_hash",
    "leaf_hashes",
    "load_signers",
    "node_hash",
    "open_checkpoint",
    "parse_note",
    "perfect_subtrees",
    "root",
    "sign_checkpoint",
    "sign_note",
    "stored_event_leaf_hash",
    "verify_consistency",
    "verify_inclusion",
    "verify_note",
]
