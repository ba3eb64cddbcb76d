"""Backend plumbing that needs no contract: revert decoding, unreachable nodes."""

from __future__ import annotations

import socket

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as selector

from veilchain.chain import ChainClient, EthTesterBackend, JsonRpcBackend, load_artifact
from veilchain.errors import ChainError, ChainUnavailableError, ContractRevertedError


@pytest.fixture(scope="module")
def backend():
    b = EthTesterBackend(None)
    b.register_errors(load_artifact()["abi"])
    yield b
    b.close()


def test_decode_custom_error_with_arguments(backend) -> None:
    data = selector("UnknownVersion(uint256,uint256)") + encode(["uint256", "uint256"], [7, 3])
    err = backend.decode_revert(data, action="getVersion")
    assert isinstance(err, ContractRevertedError)
    assert err.name == "UnknownVersion" and err.error_args == (7, 3)
    assert str(err) == (
        "getVersion reverted: UnknownVersion(datasetId=7, version=3): data set 7 has no version 3"
    )
    assert err.reason == "data set 7 has no version 3"


def test_decode_error_string_panic_unknown_and_empty(backend) -> None:
    err = backend.decode_revert(selector("Error(string)") + encode(["string"], ["no"]), action="x")
    assert (err.name, str(err)) == ("Error", "x reverted: no")
    err = backend.decode_revert(
        selector("Panic(uint256)") + encode(["uint256"], [0x11]), action="x"
    )
    assert (err.name, str(err)) == ("Panic", "x reverted: Panic(0x11)")
    err = backend.decode_revert(b"\xde\xad\xbe\xef", action="x")
    assert err.name is None and "unknown error 0xdeadbeef" in str(err)
    assert str(backend.decode_revert(b"", action="x")) == "x reverted without a reason"


def test_rpc_node_down_is_one_line_naming_the_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(ChainUnavailableError) as info:
        JsonRpcBackend(url, request_timeout_s=2)
    message = str(info.value)
    assert url in message and "\n" not in message


def test_at_refuses_an_address_without_veilregistry(backend) -> None:
    from eth_account import Account

    from veilchain.errors import ContractNotDeployedError

    with pytest.raises(ContractNotDeployedError, match="no contract"):
        ChainClient.at(backend, "0x" + "ab" * 20, Account.create())


def test_embedded_clock_moves_forward_exactly(backend) -> None:
    before = backend.block_timestamp()
    assert backend.advance_time(3600) == before + 3600 == backend.block_timestamp()
    with pytest.raises(ChainError, match="only moves forward"):
        backend.advance_time(-1)
