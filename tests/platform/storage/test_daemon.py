"""DaemonBackend without a daemon: addresses and the daemon-down errors."""

from __future__ import annotations

import socket

import pytest

from veilchain.errors import ConfigError, StorageUnavailableError
from veilchain.platform.storage import DaemonBackend, IpfsStorage, build_storage, compute_cid
from veilchain.platform.storage.daemon import to_multiaddr

pytestmark = pytest.mark.filterwarnings("ignore:The 'strict' parameter:FutureWarning")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/ip4/127.0.0.1/tcp/5001", "/ip4/127.0.0.1/tcp/5001"),
        ("http://127.0.0.1:5001", "/ip4/127.0.0.1/tcp/5001/http"),
        ("127.0.0.1:5002", "/ip4/127.0.0.1/tcp/5002/http"),
        ("https://ipfs.example.org", "/dns/ipfs.example.org/tcp/443/https"),
        ("http://[::1]:5001", "/ip6/::1/tcp/5001/http"),
    ],
)
def test_to_multiaddr(given: str, expected: str) -> None:
    assert to_multiaddr(given) == expected


@pytest.mark.parametrize("bad", ["ftp://host:1", "/ip4/127.0.0.1/udp/5001/quic", "/nonsense"])
def test_bad_address_is_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="address"):
        DaemonBackend(bad)


def test_daemon_down_names_the_address_for_every_operation() -> None:
    addr = f"/ip4/127.0.0.1/tcp/{_closed_port()}"
    storage = IpfsStorage(DaemonBackend(addr, timeout_s=5))
    cid = compute_cid(b"x")
    ops = [
        lambda: storage.add(b"x"),
        lambda: storage.cat(cid),
        lambda: storage.pin(cid),
        lambda: storage.unpin(cid),
        lambda: storage.has(cid),
        storage.pins,
    ]
    for op in ops:
        with pytest.raises(StorageUnavailableError) as info:
            op()
        message = str(info.value)
        assert addr in message and "unreachable" in message and "\n" not in message


def test_build_storage_with_api_url_uses_the_daemon(tmp_path) -> None:
    storage = build_storage(api_url="http://127.0.0.1:5999", data_dir=tmp_path)
    assert isinstance(storage.backend, DaemonBackend)
    assert storage.backend.api_addr == "/ip4/127.0.0.1/tcp/5999/http"
    assert not (tmp_path / "ipfs").exists()
