"""PyTorch networks run through onnxruntime: exported once, cached on disk, opened per process.

Tracing a network to ONNX costs one to several seconds of CPU; a batch worker pays it once,
but a one-image ``veilchain anonymize`` would pay it every time. The exported graph is
therefore kept in the cache folder (``VEILCHAIN_CACHE_DIR``, else ``$XDG_CACHE_HOME/veilchain``,
else ``~/.cache/veilchain``) under a name derived from everything it depends on: the
network's weights, the source file of its class, the export arguments and the torch version.
A cache that cannot be written is skipped (the graph is then kept in memory only)."""

from __future__ import annotations

import hashlib
import inspect
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from veilchain.errors import ModelLoadError

OPSET = 17


def cache_dir() -> Path:
    explicit = os.environ.get("VEILCHAIN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "veilchain"


def _graph_key(net: torch.nn.Module, args: tuple, export_kw: dict[str, Any]) -> str:
    h = hashlib.sha256(f"{torch.__version__}|{OPSET}|{sorted(export_kw.items())}".encode())
    source = inspect.getsourcefile(type(net))
    if source:
        h.update(Path(source).read_bytes())
    for a in args:
        h.update(f"{tuple(a.shape)}{a.dtype}".encode())
    for name, tensor in net.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _export(net: torch.nn.Module, args: tuple, what: str, export_kw: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent branches
            torch.onnx.export(
                net,
                args,
                buf,  # type: ignore[arg-type] # a file object works too
                opset_version=OPSET,
                dynamo=False,
                **export_kw,
            )
    except Exception as exc:  # noqa: BLE001 - any exporter failure means the same to a user
        raise ModelLoadError(
            f"cannot export {what} to ONNX ({type(exc).__name__}: {exc})".splitlines()[0]
        ) from exc
    return buf.getvalue()


def _cache_path(net: torch.nn.Module, args: tuple, export_kw: dict) -> Path:
    return cache_dir() / "onnx" / f"{_graph_key(net, args, export_kw)}.onnx"


def _store(path: Path, graph: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(graph)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the whole file or none
    except OSError:
        pass  # a read-only home: traced again by the next process


def onnx_session(
    net: torch.nn.Module, args: tuple, *, what: str, threads: int, **export_kw: Any
) -> Any:
    """``net`` (in eval mode) as an onnxruntime session on ``threads`` threads, exported with
    example inputs ``args`` and ``export_kw`` (input and output names, dynamic axes); ``what``
    names the network in the error raised when the export fails."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    path = _cache_path(net, args, export_kw)
    try:
        return ort.InferenceSession(path.read_bytes(), options, providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - absent, unreadable or damaged: export it again
        pass
    graph = _export(net, args, what, export_kw)
    _store(path, graph)
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
