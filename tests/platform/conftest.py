"""Platform test fixtures: a fresh SQLite database and its audit log, an HTTP image server,
and the session's two-node Ray cluster on 127.0.0.1 (``sample_inputs`` is in the top-level
conftest.py)."""

from __future__ import annotations

import os

import pytest

from veilchain.platform.audit import AuditLog
from veilchain.platform.db import make_engine, make_session_factory
from veilchain.platform.migrations import migrate


@pytest.fixture
def session_factory(tmp_path):
    """A fresh SQLite database with every registered table."""
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    migrate(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def audit(session_factory):
    return AuditLog(session_factory)


class ImageServer:
    """A real HTTP server on 127.0.0.1 serving a folder, with per-path faults: ``fail_once``
    (503 on the first request), ``slow`` (answers after ``slow_s``), ``oversize`` (declares a
    body over the image limit). ``hits`` counts the requests per path."""

    def __init__(self, root) -> None:
        import threading
        from collections import Counter
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

        self.hits: Counter[str] = Counter()
        self.fail_once: set[str] = set()
        self.slow: set[str] = set()
        self.slow_s = 3.0
        self.oversize: set[str] = set()
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=str(root), **kw)

            def do_GET(self):
                import time

                from veilchain.anonymizer.image_io import MAX_IMAGE_BYTES

                server.hits[self.path] += 1
                if self.path in server.fail_once and server.hits[self.path] == 1:
                    return self.send_error(503, "busy")
                if self.path in server.slow:
                    time.sleep(server.slow_s)
                if self.path in server.oversize:
                    self.send_response(200)
                    self.send_header("Content-Length", str(MAX_IMAGE_BYTES + 1))
                    self.end_headers()
                    return None
                return super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def image_server(sample_inputs):
    """``sample_inputs`` served over HTTP on 127.0.0.1 (``ImageServer``)."""
    server = ImageServer(sample_inputs)
    yield server
    server.close()


_NODE = dict(num_cpus=1, node_ip_address="127.0.0.1", object_store_memory=80 * 2**20)


@pytest.fixture(scope="session")
def ray_cluster():
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # keep every address on loopback
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True,
                      head_node_args={**_NODE, "include_dashboard": False})  # fmt: skip
    cluster.add_node(**_NODE)
    yield cluster
    if ray.is_initialized():
        ray.shutdown()
    cluster.shutdown()


@pytest.fixture
def two_nodes(ray_cluster):
    """The session cluster with its worker node back if a test removed it."""
    if len(list(ray_cluster.worker_nodes)) == 0:
        ray_cluster.add_node(**_NODE)
    ray_cluster.wait_for_nodes()
    return ray_cluster
