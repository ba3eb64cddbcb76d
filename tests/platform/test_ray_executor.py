"""The Ray executor on a real two-node Ray cluster on this machine (127.0.0.1 only).

One cluster per test session (``ray_cluster`` in tests/platform/conftest.py): a head and a
worker node, one CPU each. Registrations go
through it end to end (embedded chain, block store, SQLite) and are verified like any other.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.factories import make_settings
from tests.platform.conftest import ImageServer
from veilchain.errors import SourceUnavailableError
from veilchain.platform.executors import ExecutorChoice
from veilchain.platform.local_secrets import SECRETS_DIR
from veilchain.platform.registrations import RegistrationImageRow
from veilchain.platform.wiring import build_service

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def six_inputs(sample_inputs, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("six")
    for i, f in enumerate(sorted(sample_inputs.iterdir()) * 2):
        shutil.copy(f, d / f"{i}{f.suffix}")
    return d


def _service(data_dir: Path, cluster=None, batch: int = 1):
    svc = build_service(make_settings(data_dir))
    if cluster is not None:
        svc.registrar.executor = ExecutorChoice(kind="ray", address=cluster.address, batch=batch)
    else:
        svc.registrar.executor = ExecutorChoice(kind="local")
        svc.registrar.workers = 1
    return svc


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _check_complete(svc, result, n: int) -> None:
    assert result.records == n
    assert svc.verify(result.dataset_id).ok
    manifest = svc.manifest(result.dataset_id)
    ids = [r.image_id for r in manifest.records]
    assert ids == [f"{i:06d}" for i in range(n)], "an image lost or duplicated"
    assert svc.keys.images_with_keys(result.uid) == set(ids), "a key without its image"
    assert len({r.cid for r in manifest.records}) == n
    with svc.session_factory() as s:
        rows = s.query(RegistrationImageRow).filter_by(uid=result.uid).count()
    assert rows == n


def test_register_on_two_nodes_and_verify(tmp_path, two_nodes, sample_inputs):
    svc = _service(tmp_path / "d", two_nodes)
    result = svc.register([sample_inputs], name="ray", method="blur", allow_recognizable=True)
    _check_complete(svc, result, 3)
    assert svc.registrar.last_ray_stats.nodes == 2, "the actors did not spread over both nodes"
    # what a grantee gets decrypts to the anonymized image the manifest names
    rec = svc.manifest(result.dataset_id).records[0]
    plain = svc.keys.decrypt(svc.storage.cat(rec.cid), dataset=result.uid, image=rec.image_id)
    import hashlib

    assert hashlib.sha256(plain).hexdigest() == rec.anonymized_sha256
    # signed on the driver (the signing key never goes to the cluster), before pinning
    creds, problems = svc.check_credentials(result.dataset_id, result.version, 0, plain)
    assert problems == [] and creds.state == "Trusted", (creds, problems)


def test_ray_and_local_give_the_same_records(tmp_path, two_nodes, sample_inputs):
    """Same seed and inputs: every record field that does not depend on the random data key
    and nonce is equal, and the ciphertexts decrypt to the same bytes. The Merkle roots
    differ by design: each leaf commits to the ciphertext's CID and sha256, and a ciphertext
    is under a fresh random data key and nonce (and the data set uid is in its AD)."""
    ray_svc = _service(tmp_path / "ray", two_nodes)
    # "same seed" includes the installation's secret, which keys every random stream (the
    # plates' redrawn text, for one): the second data directory gets the first one's
    secret = Path(SECRETS_DIR) / "anonymizer_secret"
    (tmp_path / "local" / SECRETS_DIR).mkdir(parents=True, mode=0o700)
    shutil.copy2(tmp_path / "ray" / secret, tmp_path / "local" / secret)
    local_svc = _service(tmp_path / "local")
    kw = dict(name="same", method="blur", seed=7, allow_recognizable=True)
    a = ray_svc.register([sample_inputs], **kw)
    b = local_svc.register([sample_inputs], **kw)
    ma, mb = ray_svc.manifest(a.dataset_id), local_svc.manifest(b.dataset_id)
    assert ma.params == mb.params and ma.model_hash == mb.model_hash and ma.method == mb.method
    # anonymized_sha256 and size cover each image's Content Credentials, which name its own
    # registration and signing certificate: the pixels are compared instead
    fields = ("index", "image_id", "width", "height", "report_sha256")
    for ra, rb in zip(ma.records, mb.records, strict=True):
        assert [getattr(ra, f) for f in fields] == [getattr(rb, f) for f in fields]
        pa = ray_svc.keys.decrypt(ray_svc.storage.cat(ra.cid), dataset=a.uid, image=ra.image_id)
        pb = local_svc.keys.decrypt(local_svc.storage.cat(rb.cid), dataset=b.uid,
                                    image=rb.image_id)  # fmt: skip
        assert np.array_equal(_pixels(pa), _pixels(pb))
        for svc, res, plain in ((ray_svc, a, pa), (local_svc, b, pb)):
            _, problems = svc.check_credentials(res.dataset_id, res.version, ra.index, plain)
            assert problems == []
        assert ra.ciphertext_sha256 != rb.ciphertext_sha256  # fresh key and nonce each


def test_worker_node_killed_mid_run(tmp_path, two_nodes, six_inputs):
    svc = _service(tmp_path / "d", two_nodes)
    worker = next(iter(two_nodes.worker_nodes))
    killed = []

    def progress(done: int, total: int, stage: str) -> None:
        if done >= 1 and not killed:
            two_nodes.remove_node(worker, allow_graceful=False)
            killed.append(done)

    result = svc.register([six_inputs], name="killed", method="blur", allow_recognizable=True,
                          progress=progress)  # fmt: skip
    assert killed and killed[0] < 6, "the node was not killed mid-run"
    stats = svc.registrar.last_ray_stats
    assert stats.resubmitted >= 1, "no batch was lost with the node: the test proved nothing"
    _check_complete(svc, result, 6)


@pytest.mark.parametrize("kill_at", ["image:2", "after-pin:3"])
def test_driver_killed_then_resume(tmp_path, two_nodes, six_inputs, kill_at):
    data_dir = tmp_path / "d"
    env = {**os.environ, "VEILCHAIN_DATA_DIR": str(data_dir), "VEILCHAIN_ENV": "test",
           "VEILCHAIN_EXECUTOR__KIND": "ray", "VEILCHAIN_EXECUTOR__ADDRESS": two_nodes.address,
           "VEILCHAIN_EXECUTOR__BATCH": "1"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "tests.platform.register_driver", str(six_inputs), kill_at],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    svc = _service(data_dir, two_nodes)
    assert svc.chain.dataset_count() == 0
    (result,) = svc.resume(allow_recognizable=True)
    assert svc.chain.dataset_count() == 1, "resume must not register twice"
    _check_complete(svc, result, 6)


def test_uris_fetched_on_the_workers_and_resumed(tmp_path, two_nodes, six_inputs):
    """http:// inputs on the cluster: a server answering 503 stops the run, resume finishes
    it and fetches none of the images recorded before."""
    server = ImageServer(six_inputs)
    try:
        paths = [f"/{f.name}" for f in sorted(six_inputs.iterdir(), key=lambda f: int(f.stem))]
        server.fail_once.add(paths[-1])  # sent after two batches came back (4 in flight)
        svc = _service(tmp_path / "d", two_nodes)
        uris = [server.url + p for p in paths]
        with pytest.raises(SourceUnavailableError, match="HTTP 503"):
            svc.register(uris, name="web", method="blur", allow_recognizable=True)
        (pending,) = svc.pending_registrations()
        with svc.session_factory() as s:
            done = {r.idx for r in s.query(RegistrationImageRow).filter_by(uid=pending.uid)
                    if r.status == "done"}  # fmt: skip
        assert len(done) >= 2, "nothing was recorded before the failure: the test proves nothing"
        fetched = dict(server.hits)
        (result,) = svc.resume(allow_recognizable=True)
        _check_complete(svc, result, 6)
        for i in done:
            assert server.hits[paths[i]] == fetched[paths[i]] == 1, f"image {i} fetched again"
        assert server.hits[paths[-1]] == 2
        published = svc.storage.cat(result.manifest_cid).decode()
        assert "127.0.0.1" not in published and ".jpg" not in published
    finally:
        server.close()
