"""Signed checkpoints: the Go note reference vector, C2SP checkpoint bodies, keys from files and env, rotation."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from delivery_sdk import ValidationError
from delivery_sdk.evidence import (
    Checkpoint,
    MerkleLog,
    Signer,
    VerificationError,
    VerifierKey,
    cosign,
    generate_key,
    load_signers,
    open_checkpoint,
    parse_note,
    sign_checkpoint,
    sign_note,
    verify_consistency,
    verify_note,
)
from delivery_sdk.evidence.verify import key_id

NOTE: dict[str, Any] = json.loads((Path(__file__).parent / "fixtures" / "ct_vectors.json").read_text("utf-8"))[
    "signed_note"
]
ORIGIN = "delivery-sdk.example/hubei-high-court"


def _checkpoint(size: int = 8) -> tuple[MerkleLog, Checkpoint]:
    log = MerkleLog()
    log.append_data(f"event {i}".encode() for i in range(size))
    return log, Checkpoint(ORIGIN, log.size, log.root())


# --- the reference vector ---------------------------------------------------------------------------------------


def test_signing_reproduces_the_go_note_vector_byte_for_byte() -> None:
    signer = Signer.from_skey(NOTE["skey"])
    assert signer.vkey == NOTE["vkey"]
    assert f"{signer.key_id:08x}" == "c74f20a3"
    assert sign_note(NOTE["text"], [signer]) == NOTE["note"]
    assert signer.skey() == NOTE["skey"]


def test_the_go_note_vector_verifies_with_its_vkey() -> None:
    (key,) = verify_note(NOTE["note"], [NOTE["vkey"]])
    assert key.name == "PeterNeumann"
    note = parse_note(NOTE["note"].encode())
    assert note.text == NOTE["text"]
    assert str(note) == NOTE["note"]


def test_key_id_is_the_c2sp_hash() -> None:
    vkey = VerifierKey.parse(NOTE["vkey"])
    assert key_id("PeterNeumann", vkey.public_key) == 0xC74F20A3
    assert str(vkey) == NOTE["vkey"]


# --- checkpoints -----------------------------------------------------------------------------------------------


def test_checkpoint_body_is_origin_size_root() -> None:
    log, cp = _checkpoint(5)
    assert cp.body() == f"{ORIGIN}\n5\n{base64.b64encode(log.root()).decode()}\n"
    assert Checkpoint.parse(cp.body()) == cp
    with_ext = Checkpoint(ORIGIN, 5, log.root(), ("ext one", "ext two"))
    assert Checkpoint.parse(with_ext.body()) == with_ext


def test_signed_checkpoint_opens_with_the_trusted_key() -> None:
    _, cp = _checkpoint()
    signer = Signer.generate(ORIGIN)
    signed = sign_checkpoint(cp, [signer])
    assert signed.startswith(cp.body() + "\n— " + ORIGIN + " ")
    opened, keys = open_checkpoint(signed, [signer.vkey], origin=ORIGIN)
    assert opened == cp
    assert keys == (signer.verifier_key,)


def test_tampered_checkpoints_are_rejected() -> None:
    log, cp = _checkpoint()
    signer = Signer.generate(ORIGIN)
    signed = sign_checkpoint(cp, [signer])
    other_root = base64.b64encode(log.root(7)).decode()
    tampered = [
        signed.replace("\n8\n", "\n9\n", 1),  # another size
        signed.replace(base64.b64encode(cp.root).decode(), other_root),  # another root
        signed.replace(ORIGIN + "\n", "delivery-sdk.example/other\n", 1),  # another origin line
        signed.replace("\n\n", "\nextension\n\n", 1),  # an added extension line
    ]
    sig_line = signed.rsplit("\n", 2)[1]
    raw = bytearray(base64.b64decode(sig_line.split(" ")[2]))
    raw[10] ^= 1
    tampered.append(signed.replace(sig_line.split(" ")[2], base64.b64encode(bytes(raw)).decode()))
    for bad in tampered:
        with pytest.raises(VerificationError):
            open_checkpoint(bad, [signer.vkey])


def test_a_checkpoint_from_an_untrusted_key_is_rejected_even_with_the_same_name() -> None:
    _, cp = _checkpoint()
    impostor = Signer.generate(ORIGIN)
    trusted = Signer.generate(ORIGIN)
    signed = sign_checkpoint(cp, [impostor])
    with pytest.raises(VerificationError, match="no signature by a trusted key"):
        open_checkpoint(signed, [trusted.vkey])


def test_a_forged_signature_claiming_a_trusted_key_rejects_the_note() -> None:
    _, cp = _checkpoint()
    trusted = Signer.generate(ORIGIN)
    forger = Signer.generate(ORIGIN)
    good = sign_checkpoint(cp, [trusted])
    # a signature line naming the trusted key's name and id, made with another key
    forged_sig = base64.b64encode(trusted.key_id.to_bytes(4, "big") + forger.sign(cp.body().encode())).decode()
    forged = cp.body() + f"\n— {ORIGIN} {forged_sig}\n"
    verify_note(good, [trusted.vkey])
    with pytest.raises(VerificationError, match="does not verify"):
        verify_note(forged, [trusted.vkey])


def test_origin_mismatch_is_refused() -> None:
    _, cp = _checkpoint()
    signer = Signer.generate(ORIGIN)
    with pytest.raises(VerificationError, match="expected"):
        open_checkpoint(sign_checkpoint(cp, [signer]), [signer.vkey], origin="delivery-sdk.example/another")


def test_consecutive_checkpoints_prove_consistency() -> None:
    log, first = _checkpoint(20)
    log.append_data(f"later {i}".encode() for i in range(13))
    second = Checkpoint(ORIGIN, log.size, log.root())
    proof = log.consistency_proof(first.size, second.size)
    verify_consistency(first.size, second.size, first.root, second.root, proof.path)


# --- rotation --------------------------------------------------------------------------------------------------


def test_rotation_old_and_new_keys_both_sign_and_either_verifier_accepts() -> None:
    _, cp = _checkpoint()
    old, new = Signer.generate(ORIGIN), Signer.generate(ORIGIN)
    signed = sign_checkpoint(cp, [old, new])
    assert signed.count("\n— ") == 2
    assert open_checkpoint(signed, [old.vkey])[1] == (old.verifier_key,)
    assert open_checkpoint(signed, [new.vkey])[1] == (new.verifier_key,)
    assert set(open_checkpoint(signed, [old.vkey, new.vkey])[1]) == {old.verifier_key, new.verifier_key}
    # after the rotation only the new key signs; a verifier still trusting only the old key refuses
    after = sign_checkpoint(cp, [new])
    with pytest.raises(VerificationError):
        open_checkpoint(after, [old.vkey])


def test_cosign_adds_a_signature_and_skips_existing_ones() -> None:
    _, cp = _checkpoint()
    log_key, witness = Signer.generate(ORIGIN), Signer.generate("witness.example/w1")
    signed = sign_checkpoint(cp, [log_key])
    both = cosign(signed, [log_key, witness])
    assert both.startswith(signed)
    assert both.count("\n— ") == 2
    assert len(verify_note(both, [log_key.vkey, witness.vkey])) == 2
    with pytest.raises(ValidationError, match="not a signed note"):
        cosign(cp.body(), [witness])


# --- keys ------------------------------------------------------------------------------------------------------


def test_generate_key_round_trips() -> None:
    skey, vkey = generate_key("court.example/log")
    assert skey.startswith("PRIVATE+KEY+court.example/log+")
    signer = Signer.from_skey(skey)
    assert signer.vkey == vkey
    assert VerifierKey.parse(vkey) == signer.verifier_key
    assert skey not in repr(signer)
    assert skey.rsplit("+", 1)[1] not in repr(signer)


def test_keys_load_from_a_file_with_several_lines(tmp_path: Path) -> None:
    old, new = generate_key(ORIGIN), generate_key(ORIGIN)
    path = tmp_path / "evidence.key"
    path.write_text(f"# rotation: old key first\n{old[0]}\n\n{new[0]}\n", encoding="utf-8")
    signers = load_signers(path=path)
    assert [s.vkey for s in signers] == [old[1], new[1]]


def test_keys_load_from_the_environment() -> None:
    skey, vkey = generate_key(ORIGIN)
    (signer,) = load_signers(environ={"DELIVERY_SDK_EVIDENCE_KEY": skey})
    assert signer.vkey == vkey
    (signer,) = load_signers(env="MY_KEY", environ={"MY_KEY": skey})
    assert signer.vkey == vkey


def test_key_loading_errors_say_where_and_hide_the_key(tmp_path: Path) -> None:
    skey, _ = generate_key(ORIGIN)
    with pytest.raises(ValidationError, match="set DELIVERY_SDK_EVIDENCE_KEY"):
        load_signers(environ={})
    with pytest.raises(ValidationError, match="cannot read"):
        load_signers(path=tmp_path / "missing.key")
    (tmp_path / "empty.key").write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="no signer key in"):
        load_signers(path=tmp_path / "empty.key")
    broken = skey[:-4] + "AAAA"  # another seed: the key id no longer matches
    with pytest.raises(ValidationError, match=r"\$K, line 1: .*key id does not match") as info:
        load_signers(env="K", environ={"K": broken})
    assert broken.rsplit("+", 1)[1] not in str(info.value)
    with pytest.raises(ValidationError, match="same key twice"):
        load_signers(env="K", environ={"K": f"{skey}\n{skey}"})


@pytest.mark.parametrize(
    "skey",
    [
        "PRIVATE+KEY+name+c74f20a3",
        "PRIVATE+name+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+zzzzzzzz+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+ZYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+Peter Neumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
    ],
)
def test_malformed_signer_keys_are_refused(skey: str) -> None:
    with pytest.raises(ValidationError):
        Signer.from_skey(skey)


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+zzzzzzzz+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(VerificationError):
        VerifierKey.parse(vkey)


@pytest.mark.parametrize(
    "note",
    [
        "no blank line\n— a AAAAAAA=\n",
        "text\n\n",
        "text\n\n— a AAAAAAA=",  # no final newline
        "text\n\n- a AAAAAAA=\n",  # a hyphen, not an em dash
        "text\n\n— a AAAA\n",  # fewer than 5 bytes
        "text\n\n— a not-base64\n",
        "te\rxt\n\n— a AAAAAAA=\n",  # a control character
        "text\n\n— a+b AAAAAAA=\n",  # a plus in the key name
    ],
)
def test_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(VerificationError):
        parse_note(note)


def test_malformed_checkpoint_bodies_are_refused() -> None:
    root = base64.b64encode(bytes(32)).decode()
    for body in [
        f"{ORIGIN}\n5\n",
        f"{ORIGIN}\n05\n{root}\n",
        f"{ORIGIN}\n-5\n{root}\n",
        f"{ORIGIN}\n５\n{root}\n",  # a full-width digit
        f"{ORIGIN}\n5\n{root[:-4]}\n",
        f"{ORIGIN}\n5\n{root}",
        f"\n5\n{root}\n",
        f"{ORIGIN}\n5\n{root}\n\n",  # an empty extension line
    ]:
        with pytest.raises(VerificationError):
            Checkpoint.parse(body)
    assert Checkpoint.parse(f"{ORIGIN}\n0\n{root}\n").size == 0


def test_sign_note_refuses_bad_text() -> None:
    signer = Signer.generate(ORIGIN)
    with pytest.raises(ValidationError):
        sign_note("no final newline", [signer])
    with pytest.raises(ValidationError):
        sign_note("bell \x07\n", [signer])
    with pytest.raises(ValidationError):
        sign_note("text\n", [])
