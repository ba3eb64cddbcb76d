"""build_chain_client: open the chain, load the signing account, deploy on first use."""

from __future__ import annotations

from pathlib import Path

from veilchain.chain.accounts import DEFAULT_SCRYPT_N, Keystore, account_from_key
from veilchain.chain.backends import DEFAULT_LOG_BLOCK_RANGE, ChainBackend, JsonRpcBackend
from veilchain.chain.client import AddressBook, ChainClient, Deployment

__all__ = ["ADMIN_ACCOUNT", "DEV_FUNDING_WEI", "build_chain_client", "open_backend"]

ADMIN_ACCOUNT = "admin"
DEV_FUNDING_WEI = 100 * 10**18
_MIN_BALANCE_WEI = 10**18


def open_backend(
    *,
    rpc_url: str | None,
    data_dir: Path,
    log_block_range: int = DEFAULT_LOG_BLOCK_RANGE,
    confirmations: int = 0,
) -> ChainBackend:
    """The JSON-RPC node at ``rpc_url``, or the embedded chain persisted in data_dir/chain."""
    if rpc_url:
        return JsonRpcBackend(rpc_url, log_block_range=log_block_range, confirmations=confirmations)
    from veilchain.chain.embedded import EthTesterBackend

    return EthTesterBackend(Path(data_dir) / "chain", log_block_range=log_block_range)


def build_chain_client(
    *,
    rpc_url: str | None,
    data_dir: Path,
    private_key: str | None = None,
    keystore_passphrase: str,
    contract_address: str | None = None,
    log_block_range: int = DEFAULT_LOG_BLOCK_RANGE,
    confirmations: int = 0,
    account_name: str = ADMIN_ACCOUNT,
    scrypt_n: int = DEFAULT_SCRYPT_N,
    backend: ChainBackend | None = None,
) -> ChainClient:
    """A ready ChainClient, acting as the admin account.

    The account is ``private_key`` or ``account_name`` in the keystore data_dir/keystore
    (created on first use). On a dev chain it is funded when below 1 ether. The contract is
    ``contract_address``, else the address book data_dir/addressbook.json entry for this
    chain (checked: code present, same genesis), else a fresh deployment recorded there.
    """
    data_dir = Path(data_dir)
    if backend is None:
        backend = open_backend(
            rpc_url=rpc_url,
            data_dir=data_dir,
            log_block_range=log_block_range,
            confirmations=confirmations,
        )
    try:
        if private_key:
            account = account_from_key(private_key)
        else:
            keystore = Keystore(data_dir / "keystore", keystore_passphrase, scrypt_n=scrypt_n)
            account = keystore.get_or_create(account_name)
        if backend.is_dev_chain and backend.get_balance(account.address) < _MIN_BALANCE_WEI:
            backend.fund(account.address, DEV_FUNDING_WEI)
        if contract_address:
            return ChainClient.at(backend, contract_address, account)
        book = AddressBook(data_dir / "addressbook.json")
        chain_id = backend.chain_id
        genesis = backend.genesis_hash()
        entry = book.get(chain_id)
        # An entry from another chain with the same id (a reset dev node), or one whose code
        # is gone, is replaced by a new deployment; different code at the address is an error.
        if entry is not None and entry.genesis_hash == genesis and backend.get_code(entry.address):
            return ChainClient.at(backend, entry.address, account, deploy_block=entry.deploy_block)
        client = ChainClient.deploy(backend, account)
        receipt_block = client.deploy_block
        book.record(
            chain_id,
            Deployment(
                address=client.address,
                deploy_block=receipt_block,
                tx_hash=client.deploy_tx_hash or "",
                genesis_hash=genesis,
            ),
        )
        return client
    except BaseException:
        backend.close()
        raise
