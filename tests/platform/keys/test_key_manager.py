"""KeyManager on a real SQLite database: encryption, storage, release, inventory, audit."""

from __future__ import annotations

import json
import logging
import os

import pytest
from sqlalchemy import select, update

from tests.factories import FAST_SCRYPT_N, PASSPHRASE
from veilchain.errors import (
    DataKeyNotFoundError,
    DecryptionError,
    InputError,
    KeyManagementError,
)
from veilchain.platform.keys import (
    HEADER_LEN,
    KeyManager,
    PassphraseSource,
    decrypt_with_data_key,
    generate_keypair,
    open_sealed_key,
)
from veilchain.platform.keys.tables import DATA_KEYS


def test_round_trip_and_wrapped_key_record(km, session_factory):
    image = os.urandom(5_000)
    ct = km.encrypt(image, dataset="ds", image="a.png")
    assert ct[:4] == b"VEIL" and len(ct) == HEADER_LEN + len(image) + 16
    assert km.decrypt(ct, dataset="ds", image="a.png") == image
    with session_factory() as s:
        row = s.execute(select(DATA_KEYS)).one()
    assert (row.dataset, row.image, row.kek_version) == ("ds", "a.png", 1)
    assert len(row.wrapped) == 12 + 32 + 16


def test_encrypt_many_one_transaction_and_decrypt_many(km):
    items = [(f"img-{i:03d}", os.urandom(1_000 + i)) for i in range(50)]
    cts = km.encrypt_many(items, dataset="ds")
    assert [km.decrypt(c, dataset="ds", image=i) for (i, _), c in zip(items, cts, strict=True)] == [
        p for _, p in items
    ]
    pairs = [(i, c) for (i, _), c in zip(items, cts, strict=True)]
    assert km.decrypt_many(pairs, dataset="ds") == [p for _, p in items]
    assert km.images_with_keys("ds") == {i for i, _ in items}


def test_encrypt_many_is_atomic_on_duplicate(km):
    km.encrypt(b"x", dataset="ds", image="b")
    with pytest.raises(KeyManagementError, match="already exists"):
        km.encrypt_many([("a", b"1"), ("b", b"2")], dataset="ds")
    assert km.images_with_keys("ds") == {"b"}  # "a" was rolled back with the batch
    with pytest.raises(InputError):
        km.encrypt_many([("c", b"1"), ("c", b"2")], dataset="ds")


def test_each_image_has_its_own_key(km):
    sk, pk = generate_keypair()
    km.encrypt_many([("a", b"same"), ("b", b"same")], dataset="ds")
    key_a = open_sealed_key(km.release_sealed(dataset="ds", image="a", recipient_public_key=pk), sk)
    key_b = open_sealed_key(km.release_sealed(dataset="ds", image="b", recipient_public_key=pk), sk)
    assert key_a != key_b


def test_flipped_byte_anywhere_is_caught(km):
    ct = km.encrypt(os.urandom(200), dataset="ds", image="a")
    for i in range(len(ct)):
        bad = bytearray(ct)
        bad[i] ^= 0x04
        with pytest.raises(DecryptionError) as err:
            km.decrypt(bytes(bad), dataset="ds", image="a")
        assert "\n" not in str(err.value)


def test_ciphertext_moved_to_another_image_or_dataset_fails(km):
    ct_a = km.encrypt(b"image a", dataset="ds", image="a")
    km.encrypt(b"image b", dataset="ds", image="b")
    km.encrypt(b"image a of ds2", dataset="ds2", image="a")
    with pytest.raises(DecryptionError):
        km.decrypt(ct_a, dataset="ds", image="b")
    with pytest.raises(DecryptionError):
        km.decrypt(ct_a, dataset="ds2", image="a")
    with pytest.raises(DataKeyNotFoundError):
        km.decrypt(ct_a, dataset="ds", image="zzz")


def test_wrapped_key_moved_between_images_fails(km, session_factory):
    """Copying a wrapped key record onto another image does not yield a usable key."""
    ct_b = km.encrypt(b"b", dataset="ds", image="b")
    km.encrypt(b"a", dataset="ds", image="a")
    with session_factory() as s:
        wrapped_a = s.execute(select(DATA_KEYS.c.wrapped).where(DATA_KEYS.c.image == "a")).scalar()
        s.execute(update(DATA_KEYS).where(DATA_KEYS.c.image == "b").values(wrapped=wrapped_a))
        s.commit()
    with pytest.raises(DecryptionError, match="does not unwrap"):
        km.decrypt(ct_b, dataset="ds", image="b")


def test_sealed_release_opens_for_grantee_only(km):
    image = os.urandom(3_000)
    ct = km.encrypt(image, dataset="ds", image="a")
    sk, pk = generate_keypair()
    other_sk, _ = generate_keypair()
    sealed = km.release_sealed(dataset="ds", image="a", recipient_public_key=pk)
    data_key = open_sealed_key(sealed, sk)
    assert decrypt_with_data_key(ct, data_key, dataset="ds", image="a") == image
    with pytest.raises(DecryptionError):
        open_sealed_key(sealed, other_sk)
    with pytest.raises(DecryptionError):
        decrypt_with_data_key(ct, data_key, dataset="ds", image="b")
    with pytest.raises(DataKeyNotFoundError):
        km.release_sealed(dataset="ds", image="nope", recipient_public_key=pk)


def test_delete_keys_whole_dataset_and_subset(km, audit):
    km.encrypt_many([(f"i{n}", b"x") for n in range(5)], dataset="ds")
    km.encrypt(b"y", dataset="other", image="i0")
    assert km.delete_keys("ds", ["i0", "i1", "missing"]) == 2
    assert km.images_with_keys("ds") == {"i2", "i3", "i4"}
    assert not km.has_key("ds", "i0") and km.has_key("ds", "i2")
    assert km.delete_keys("ds") == 3
    assert km.images_with_keys("ds") == set() and km.has_key("other", "i0")
    events = audit.query(event="key_deletion")
    assert [e.details["deleted"] for e in events] == [2, 3]
    assert events[0].details["images"] == ["i0", "i1", "missing"]
    assert audit.verify().ok


def test_second_process_view_shares_keys(km, session_factory, audit):
    """Another KeyManager on the same database (another process) decrypts and sees rotations."""
    ct = km.encrypt(b"shared", dataset="ds", image="a")
    other = KeyManager(session_factory, PassphraseSource(PASSPHRASE, n=FAST_SCRYPT_N), audit)
    assert other.decrypt(ct, dataset="ds", image="a") == b"shared"
    assert other.rotate() == 2
    ct2 = other.encrypt(b"after rotation", dataset="ds", image="b")
    assert km.decrypt(ct2, dataset="ds", image="b") == b"after rotation"  # loads version 2
    assert km.status().current_version == 2


def test_no_secret_in_audit_or_logs(km, audit, session_factory, caplog):
    caplog.set_level(logging.DEBUG)
    marker = b"PLAINTEXT-MARKER-" + os.urandom(8).hex().encode()
    sk, pk = generate_keypair()
    cts = km.encrypt_many([("a", marker), ("b", marker)], dataset="ds")
    km.decrypt(cts[0], dataset="ds", image="a")
    data_key = open_sealed_key(
        km.release_sealed(dataset="ds", image="a", recipient_public_key=pk), sk
    )
    km.rotate()
    km.rewrap()
    km.set_min_decryption_version(2)
    km.delete_keys("ds", ["b"])
    with pytest.raises(DecryptionError):
        km.decrypt(cts[0][:-1] + bytes([cts[0][-1] ^ 1]), dataset="ds", image="a")
    audit_dump = json.dumps([e.to_dict() for e in audit.query()])
    haystacks = [caplog.text, audit_dump, repr(km.status()), repr(PassphraseSource(PASSPHRASE))]
    needles = [
        PASSPHRASE,
        marker.decode(),
        data_key.hex(),
        data_key.hex().upper(),
        repr(data_key)[2:-1],
    ]
    for hay in haystacks:
        for needle in needles:
            assert needle not in hay
    assert {e.event for e in audit.query()} == {"rotation", "rewrap", "retire", "key_deletion"}


def test_keys_are_never_stored_in_plaintext(km, tmp_path):
    sk, pk = generate_keypair()
    km.encrypt_many([(f"i{n}", b"z") for n in range(20)], dataset="ds")
    keys = [
        open_sealed_key(km.release_sealed(dataset="ds", image=f"i{n}", recipient_public_key=pk), sk)
        for n in range(20)
    ]
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("platform.db*"))
    assert blob, "database files exist"
    assert PASSPHRASE.encode() not in blob
    for key in keys:
        assert key not in blob


def test_concurrent_encrypt_many_and_rotation_on_sqlite(km):
    import threading

    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for b in range(5):
                items = [(f"t{n}-{b}-{i}", b"%d" % i) for i in range(20)]
                cts = km.encrypt_many(items, dataset="ds")
                assert km.decrypt(cts[3], dataset="ds", image=f"t{n}-{b}-3") == b"3"
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    km.rotate()
    for t in threads:
        t.join()
    assert errors == [] and len(km.images_with_keys("ds")) == 400
    km.rewrap()
    km.set_min_decryption_version(2)
    assert km.status().versions[-1].data_keys == 400
