"""The on-disk cache of exported ONNX graphs (anonymizer/onnx_runtime.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from veilchain.anonymizer.onnx_runtime import onnx_session


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VEILCHAIN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


def _run(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    session = onnx_session(net, (x,), what="a test network", threads=1,
                           input_names=["x"], output_names=["y"])  # fmt: skip
    return session.run(None, {"x": x.numpy()})[0]


def _expected(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return net(x).numpy()


def test_exported_once_then_read_from_the_cache(cache):
    torch.manual_seed(0)
    net, x = _Tiny().eval(), torch.rand(1, 3, 8, 8)
    np.testing.assert_allclose(_run(net, x), _expected(net, x), atol=1e-5)
    (graph,) = cache.iterdir()
    stamp = graph.stat().st_mtime_ns, graph.stat().st_ino
    np.testing.assert_allclose(_run(net, x), _expected(net, x), atol=1e-5)
    assert list(cache.iterdir()) == [graph]
    assert (graph.stat().st_mtime_ns, graph.stat().st_ino) == stamp  # read, not rewritten


def test_other_weights_get_their_own_graph(cache):
    torch.manual_seed(0)
    a, b, x = _Tiny().eval(), _Tiny().eval(), torch.rand(1, 3, 8, 8)
    out_a, out_b = _run(a, x), _run(b, x)
    assert len(list(cache.iterdir())) == 2
    np.testing.assert_allclose(out_b, _expected(b, x), atol=1e-5)
    assert not np.allclose(out_a, out_b)


def test_a_damaged_graph_is_exported_again(cache):
    torch.manual_seed(0)
    net, x = _Tiny().eval(), torch.rand(1, 3, 8, 8)
    _run(net, x)
    (graph,) = cache.iterdir()
    graph.write_bytes(graph.read_bytes()[:100])
    np.testing.assert_allclose(_run(net, x), _expected(net, x), atol=1e-5)
    assert graph.stat().st_size > 100


def test_an_unwritable_cache_only_costs_time(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("VEILCHAIN_CACHE_DIR", str(blocker))
    torch.manual_seed(0)
    net, x = _Tiny().eval(), torch.rand(1, 3, 8, 8)
    np.testing.assert_allclose(_run(net, x), _expected(net, x), atol=1e-5)
