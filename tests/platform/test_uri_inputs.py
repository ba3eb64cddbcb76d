"""Registration from a list of URIs (``anonymizer/sources.py``), with the local executor,
against a real HTTP server on 127.0.0.1 (``image_server`` in conftest.py). The Ray executor's
URI test is in test_ray_executor.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.factories import SAMPLE_INPUT_NAMES, make_settings
from veilchain.anonymizer.sources import SourceReader, iter_sources, iter_uri_list
from veilchain.errors import InputError, SourceUnavailableError
from veilchain.platform.executors import ExecutorChoice
from veilchain.platform.registrations import ABORTED, RegistrationImageRow, RegistrationRow
from veilchain.platform.wiring import build_service


def _service(data_dir, workers: int = 1):
    svc = build_service(make_settings(data_dir))
    svc.registrar.executor = ExecutorChoice(kind="local")
    svc.registrar.workers = workers
    return svc


def test_uri_list_is_read_lazily_and_skips_blanks_and_comments(tmp_path):
    f = tmp_path / "uris.txt"
    f.write_text("# photos\n\n  http://127.0.0.1:9/a.jpg  \nfile:///x/b.png\n#end\n")
    assert list(iter_uri_list(f)) == ["http://127.0.0.1:9/a.jpg", "file:///x/b.png"]
    f.write_text("http://127.0.0.1:9/a.jpg\nfile:///x/b.png\nftp://host/c.jpg\n")
    it = iter_uri_list(f)
    assert next(it) == "http://127.0.0.1:9/a.jpg"  # lazily: the bad line is not read yet
    assert next(it) == "file:///x/b.png"
    with pytest.raises(InputError, match=r"uris.txt line 3: ftp://host/c.jpg: unsupported"):
        next(it)
    f.write_text("photos/a.jpg\n")
    with pytest.raises(InputError, match=r"line 1: 'photos/a.jpg' is not a URI"):
        list(iter_uri_list(f))
    with pytest.raises(InputError, match="no host"):
        list(iter_sources(["http:///a.jpg"]))
    with pytest.raises(InputError, match="no such URI list"):
        list(iter_uri_list(tmp_path / "missing.txt"))


def test_fetch_errors_are_one_line_and_sorted_by_whether_they_pass(image_server):
    reader = SourceReader(timeout_s=1.0)
    assert reader.read(f"{image_server.url}/obama.jpg")[:2] == b"\xff\xd8"  # a JPEG
    cases = [
        ("/missing.jpg", InputError, "HTTP 404"),
        ("/obama.jpg", InputError, "larger than the 50 MiB image limit"),
        ("/biden.jpg", SourceUnavailableError, "no complete answer within 1 s"),
        ("/astronaut.jpg", SourceUnavailableError, "HTTP 503"),
    ]
    image_server.oversize.add("/obama.jpg")
    image_server.slow.add("/biden.jpg")
    image_server.fail_once.add("/astronaut.jpg")
    for path, kind, message in cases:
        with pytest.raises(kind, match=message) as err:
            reader.read(image_server.url + path)
        assert "\n" not in str(err.value) and str(err.value).startswith(image_server.url)
    assert not issubclass(SourceUnavailableError, InputError)  # transient: left to resume
    closed = image_server.url.rsplit(":", 1)[0] + ":9"  # nothing listens on port 9
    with pytest.raises(SourceUnavailableError, match="cannot fetch"):
        reader.read(closed + "/a.jpg")


def test_register_uris_and_verify_without_publishing_them(tmp_path, image_server, sample_inputs):
    """http:// through two worker processes, and file://; the manifest and reports hold no
    trace of the URIs or file names."""
    svc = _service(tmp_path / "d", workers=2)
    first, *rest = SAMPLE_INPUT_NAMES
    uris = [(sample_inputs / first).as_uri()] + [f"{image_server.url}/{n}" for n in rest]
    result = svc.register(uris, name="web", method="blur", allow_recognizable=True)
    assert result.records == 3 and svc.verify(result.dataset_id).ok
    assert sorted(image_server.hits.values()) == [1, 1]  # each fetched once
    published = svc.storage.cat(result.manifest_cid).decode()
    with svc.session_factory() as s:
        rows = s.query(RegistrationImageRow).filter_by(uid=result.uid).order_by("idx").all()
        assert [r.source for r in rows] == uris  # progress is keyed by position and URI
        reports = " ".join(r.report_json for r in rows)
    for text in (published, reports):
        for leak in ("127.0.0.1", "http", "file:", *[n.split(".")[0] for n in SAMPLE_INPUT_NAMES]):
            assert leak not in text, f"{leak!r} published"


def test_an_unreadable_uri_gives_the_registration_up(tmp_path, image_server):
    svc = _service(tmp_path / "d")
    uris = [f"{image_server.url}/obama.jpg", f"{image_server.url}/gone.jpg"]
    with pytest.raises(InputError, match=r"/gone.jpg: HTTP 404"):
        svc.register(uris, name="web", method="blur", allow_recognizable=True)
    with svc.session_factory() as s:
        (reg,) = s.query(RegistrationRow).all()
    assert reg.status == ABORTED and svc.keys.images_with_keys(reg.uid) == set()


def test_a_server_down_leaves_it_to_resume_which_fetches_only_unfinished(tmp_path, image_server):
    svc = _service(tmp_path / "d")
    paths = [f"/{n}" for n in SAMPLE_INPUT_NAMES]
    image_server.fail_once.add(paths[1])
    uris = [image_server.url + p for p in paths]
    with pytest.raises(SourceUnavailableError, match="HTTP 503"):
        svc.register(uris, name="web", method="blur", allow_recognizable=True)
    (pending,) = svc.pending_registrations()
    assert svc.keys.images_with_keys(pending.uid) == {"000000"}
    (result,) = svc.resume(allow_recognizable=True)
    assert result.records == 3 and svc.verify(result.dataset_id).ok
    assert svc.chain.dataset_count() == 1
    # the finished image was not fetched again; the failed one twice
    assert [image_server.hits[p] for p in paths] == [1, 2, 1]


@pytest.mark.slow
def test_cli_reads_the_uri_list_from_stdin(tmp_path, image_server):
    uris = "".join(f"# {n}\n{image_server.url}/{n}\n\n" for n in SAMPLE_INPUT_NAMES[:2])
    out = subprocess.run(
        [sys.executable, "-m", "veilchain.cli", "--data-dir", str(tmp_path / "d"), "register",
         "--uri-list", "-", "--name", "web", "--method", "blur", "--allow-recognizable",
         "--json"],
        input=uris, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    (doc,) = json.loads(out.stdout)
    assert doc["records"] == 2
    out = subprocess.run(
        [sys.executable, "-m", "veilchain.cli", "--data-dir", str(tmp_path / "d"), "register",
         "--uri-list", "-", "--name", "web2", "--method", "blur"],
        input=f"{image_server.url}/none.jpg\n", capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    assert [line for line in out.stderr.splitlines() if line.strip()] == [
        f"error: {image_server.url}/none.jpg: HTTP 404 File not found"
    ]
