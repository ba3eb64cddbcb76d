"""veilchain.chain: the VeilRegistry contract, one client for every backend, Merkle proofs.

    client = build_chain_client(rpc_url=None, data_dir=Path(".veilchain"),
                                keystore_passphrase="...")
    ref = client.register_dataset(merkle_root=tree.root, record_count=len(tree), ...)

Backends: EthTesterBackend (py-evm in process; persisted when given a directory) and
JsonRpcBackend (any node). Nothing here imports veilchain.platform.
"""

from veilchain.chain.accounts import Keystore, account_from_key
from veilchain.chain.backends import ChainBackend, JsonRpcBackend
from veilchain.chain.client import (
    AddressBook,
    Attestation,
    AuditAnchor,
    ChainClient,
    DatasetInfo,
    DatasetVersion,
    Deployment,
    Grant,
    TxRef,
    VersionRef,
    load_artifact,
)
from veilchain.chain.embedded import EthTesterBackend
from veilchain.chain.factory import build_chain_client, open_backend
from veilchain.chain.merkle import MerkleTree, build_merkle_tree, hash_pair, verify_proof

__all__ = [
    "AddressBook",
    "Attestation",
    "AuditAnchor",
    "ChainBackend",
    "ChainClient",
    "DatasetInfo",
    "DatasetVersion",
    "Deployment",
    "EthTesterBackend",
    "Grant",
    "JsonRpcBackend",
    "Keystore",
    "MerkleTree",
    "TxRef",
    "VersionRef",
    "account_from_key",
    "build_chain_client",
    "build_merkle_tree",
    "hash_pair",
    "load_artifact",
    "open_backend",
    "verify_proof",
]
