"""Sorted-pair Merkle trees: Python's proofs against the contract's verifyRecord, many sizes."""

from __future__ import annotations

import random

import pytest
from eth_utils import keccak

from tests.factories import version_fields
from veilchain.chain import build_merkle_tree, hash_pair, verify_proof
from veilchain.errors import InputError

SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 33, 100, 255, 257, 1000]


def leaves_for(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(n * 1_000_003 + seed)
    return [keccak(rng.randbytes(40)) for _ in range(n)]


def test_hash_pair_is_order_independent_keccak_of_sorted_pair() -> None:
    a, b = keccak(b"a"), keccak(b"b")
    low, high = sorted([a, b])
    assert hash_pair(a, b) == hash_pair(b, a) == keccak(low + high)


def test_one_leaf_tree_root_is_the_leaf_with_empty_proof() -> None:
    leaf = keccak(b"only")
    tree = build_merkle_tree([leaf])
    assert tree.root == leaf and tree.proof(0) == [] and len(tree) == 1
    assert verify_proof(leaf, [], tree.root)


def test_empty_tree_and_bad_leaves_are_refused() -> None:
    with pytest.raises(InputError, match="zero records"):
        build_merkle_tree([])
    with pytest.raises(InputError, match="32-byte"):
        build_merkle_tree([b"short"])
    with pytest.raises(InputError, match="outside the tree"):
        build_merkle_tree(leaves_for(3)).proof(3)


def test_known_small_trees() -> None:
    a, b, c = leaves_for(3)
    assert build_merkle_tree([a, b]).root == hash_pair(a, b)
    # Three leaves: the odd one is promoted, then paired with the first pair's parent.
    assert build_merkle_tree([a, b, c]).root == hash_pair(hash_pair(a, b), c)
    assert build_merkle_tree([a, b, c]).proof(2) == [hash_pair(a, b)]


@pytest.mark.parametrize("n", SIZES)
def test_every_proof_verifies_in_python(n: int) -> None:
    leaves = leaves_for(n)
    tree = build_merkle_tree(leaves)
    for i, leaf in enumerate(leaves):
        proof = tree.proof(i)
        assert verify_proof(leaf, proof, tree.root)
        assert len(proof) <= max(1, (n - 1).bit_length())


@pytest.fixture(scope="module")
def registered(embedded_chain):
    """One data set per size on the embedded chain: {size: (dataset_id, leaves, tree)}."""
    out = {}
    for n in SIZES:
        leaves = leaves_for(n)
        tree = build_merkle_tree(leaves)
        ref = embedded_chain.institution.register_dataset(
            **version_fields(merkle_root=tree.root, record_count=n)
        )
        out[n] = (ref.dataset_id, leaves, tree)
    return out


@pytest.mark.parametrize("n", SIZES)
def test_contract_accepts_python_proofs(embedded_chain, registered, n: int) -> None:
    dataset_id, leaves, tree = registered[n]
    indices = range(n) if n <= 33 else sorted({0, 1, n // 2, n - 2, n - 1, 77 % n})
    for i in indices:
        assert embedded_chain.stranger.verify_record(dataset_id, 1, leaves[i], tree.proof(i)), i


@pytest.mark.parametrize("n", [2, 3, 7, 100, 257])
def test_contract_rejects_tampered_proofs(embedded_chain, registered, n: int) -> None:
    dataset_id, leaves, tree = registered[n]
    client = embedded_chain.stranger
    i = n // 2
    proof = tree.proof(i)
    flipped_leaf = bytes([leaves[i][0] ^ 1]) + leaves[i][1:]
    cases = {
        "flipped leaf bit": (flipped_leaf, proof),
        "other leaf": (leaves[(i + 1) % n], proof),
        "truncated proof": (leaves[i], proof[:-1]),
        "extra node": (leaves[i], [*proof, leaves[0]]),
        "flipped proof node": (leaves[i], [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]),
    }
    if len(proof) > 1:
        cases["reordered proof"] = (leaves[i], list(reversed(proof)))
    for name, (leaf, bad) in cases.items():
        assert not verify_proof(leaf, bad, tree.root), name
        assert not client.verify_record(dataset_id, 1, leaf, bad), name


def test_proof_of_one_data_set_fails_against_another(embedded_chain, registered) -> None:
    id_a, leaves_a, tree_a = registered[100]
    id_b, _, _ = registered[255]
    assert not embedded_chain.stranger.verify_record(id_b, 1, leaves_a[5], tree_a.proof(5))
    assert embedded_chain.stranger.verify_record(id_a, 1, leaves_a[5], tree_a.proof(5))


def test_internal_node_is_accepted_as_a_leaf_so_leaves_must_be_domain_separated(
    embedded_chain, registered
) -> None:
    """Documented property of plain sorted-pair trees (docs/contract.md): a level-1 node with
    the remaining path also verifies. Leaf encodings must therefore never be 64 bytes."""
    dataset_id, leaves, tree = registered[4]
    node = hash_pair(leaves[0], leaves[1])
    assert embedded_chain.stranger.verify_record(dataset_id, 1, node, [hash_pair(*leaves[2:])])
