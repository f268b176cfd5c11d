"""Downloads against a loopback HTTP server (127.0.0.1 only; nothing here reaches the network).

The server serves small files written here in the datasets' real formats (gzipped IDX), and
misbehaves on purpose by mirror name: ``missing`` answers 404, ``corrupt`` flips a byte,
``truncated`` ends the file early, ``stop`` drops the connection half way through its first
answer, ``norange`` ignores Range requests. The pinned checksums of ``SOURCES`` are swapped for
those of the generated files; the real pinned values are checked for form only.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import re
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import genlab.data.downloads as dl
from cifar_files import make_batches, write_archive
from genlab.cli.main import main
from genlab.core.config import DataConfig
from genlab.core.errors import DataError
from genlab.data.base import load_data
from genlab.data.sources import SOURCES, RemoteFile, Source
from helpers import assert_one_line_error

IDX_NAMES = [f.name for f in SOURCES["mnist"].files]


def idx_gz(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return gzip.compress(header + arr.astype(np.uint8).tobytes(), mtime=0)


def mnist_like_files(seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    arrays = [
        rng.integers(0, 256, (40, 28, 28)),
        np.arange(40) % 10,
        rng.integers(0, 256, (20, 28, 28)),
        np.arange(20) % 10,
    ]
    return {name: idx_gz(a) for name, a in zip(IDX_NAMES, arrays, strict=True)}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        srv = self.server
        mirror, name = self.path.strip("/").split("/", 1)
        rng = self.headers.get("Range")
        srv.log.append((mirror, name, rng))
        body = srv.files.get(name)
        if body is None or mirror == "missing":
            self.send_error(404)
            return
        if mirror == "corrupt":
            body = body[:10] + bytes([body[10] ^ 0xFF]) + body[11:]
        if mirror == "truncated":
            body = body[: len(body) // 2]
        start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1)) if rng else 0
        if start and mirror != "norange":
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            body = body[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        first = not any(m == mirror and n == name for m, n, _ in srv.log[:-1])
        if mirror == "stop" and first:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.files, srv.log = mnist_like_files(), []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.url = lambda mirror: f"http://127.0.0.1:{srv.server_address[1]}/{mirror}"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def fake_mnist(server, monkeypatch, tmp_path):
    """SOURCES["mnist"] pinned to the generated files, served by mirror ``good``;
    ``GENLAB_DATA`` in tmp_path."""
    files = tuple(
        RemoteFile(n, len(b), hashlib.sha256(b).hexdigest()) for n, b in server.files.items()
    )
    src = Source(files, (server.url("good"),), "http://127.0.0.1/", "test")
    monkeypatch.setitem(SOURCES, "mnist", src)
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))
    return src


def files_ok(root: Path, server) -> bool:
    return all((root / n).read_bytes() == b for n, b in server.files.items())


def test_download_checks_renames_and_then_only_verifies(server, fake_mnist, tmp_path):
    root = dl.download("mnist", progress=False)
    assert root == tmp_path / "data" / "mnist" and files_ok(root, server)
    assert not list(root.glob("*.part"))
    assert [n for _, n, _ in server.log] == IDX_NAMES
    server.log.clear()
    dl.download("mnist", progress=False)  # everything there and verified: no request
    assert server.log == []
    data = load_data(DataConfig(name="mnist"))  # the download folder is the default root
    assert data.train.x.shape == (40, 1, 28, 28) and data.test.y.tolist() == list(range(10)) * 2


def test_mirrors_are_tried_in_order_until_one_delivers_the_published_file(server, fake_mnist):
    mirrors = [server.url("missing"), server.url("corrupt"), server.url("truncated")]
    root = dl.download("mnist", mirrors=mirrors, progress=False)
    assert files_ok(root, server) and not list(root.glob("*.part"))
    first = [m for m, n, _ in server.log if n == IDX_NAMES[0]]
    assert first[:2] == ["missing", "corrupt"] and first[-1] == "good"
    assert "truncated" in first  # retried with a range (answered 416), then given up


def test_a_dropped_connection_resumes_with_a_range_request(server, fake_mnist):
    root = dl.download("mnist", mirrors=[server.url("stop")], progress=False)
    assert files_ok(root, server)
    name = IDX_NAMES[0]
    ranges = [r for m, n, r in server.log if m == "stop" and n == name]
    half = len(server.files[name]) // 2
    assert ranges == [None, f"bytes={half}-"]


def test_a_partial_file_left_by_an_earlier_run_is_resumed(server, fake_mnist, tmp_path):
    root = tmp_path / "data" / "mnist"
    root.mkdir(parents=True)
    name = IDX_NAMES[0]
    (root / f"{name}.part").write_bytes(server.files[name][:1000])
    dl.download("mnist", progress=False)
    assert files_ok(root, server)
    assert (("good", name, "bytes=1000-")) in server.log


def test_a_server_that_ignores_ranges_gives_the_whole_file_once(server, fake_mnist, tmp_path):
    root = tmp_path / "data" / "mnist"
    root.mkdir(parents=True)
    name = IDX_NAMES[0]
    (root / f"{name}.part").write_bytes(server.files[name][:1000])
    dl.download("mnist", mirrors=[server.url("norange")], progress=False)
    assert files_ok(root, server)  # not the first 1000 bytes twice


def test_offline_is_one_line_naming_the_url_and_the_folder(server, fake_mnist, cli, tmp_path):
    bad = (server.url("missing"), server.url("corrupt"))
    SOURCES["mnist"] = Source(fake_mnist.files, bad, "", "test")
    code, _, err = cli("data", "download", "mnist")
    assert code == 2
    root = tmp_path / "data" / "mnist"
    line = assert_one_line_error(err, "HTTP 404", "sha256", f"{bad[0]}/{IDX_NAMES[0]}", str(root))
    assert all(n in line for n in IDX_NAMES)  # every file the user must fetch by hand
    assert list(root.iterdir()) == [root / ".download.lock"]  # the corrupt .part was removed


def test_a_wrong_file_under_the_final_name_is_refused_not_replaced(server, fake_mnist, tmp_path):
    root = tmp_path / "data" / "mnist"
    root.mkdir(parents=True)
    (root / IDX_NAMES[1]).write_bytes(b"something else")
    with pytest.raises(DataError, match=r"is not the published file.*delete it"):
        dl.download("mnist", progress=False)
    assert (root / IDX_NAMES[1]).read_bytes() == b"something else"


def test_a_full_disk_is_one_line_and_leaves_no_final_file(server, fake_mnist, monkeypatch, cli):
    class FullDisk:
        def __init__(self, *args) -> None:
            self.f = open(*args)  # noqa: SIM115 - closed by __exit__

        def write(self, _chunk):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(dl, "open", FullDisk, raising=False)
    code, _, err = cli("data", "download", "mnist")
    assert code == 2
    assert_one_line_error(err, "cannot write", "No space left on device", "needs")
    assert not list((Path(dl.data_home()) / "mnist").glob("*-ubyte.gz"))


def test_two_downloads_into_one_folder_take_turns(server, fake_mnist):
    errors: list[BaseException] = []

    def run() -> None:
        try:
            dl.download("mnist", progress=False)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [n for _, n, _ in server.log] == IDX_NAMES  # each file fetched once


def test_train_with_data_download(server, fake_mnist, cli, tmp_path):
    code, _, err = cli(
        "train",
        "vae",
        "--preset",
        "tiny_vae",
        "--data",
        "mnist",
        "--out",
        tmp_path / "run",
        "data.download=true",
    )
    assert code == 0, err
    assert (tmp_path / "run" / "config.json").is_file()
    assert files_ok(tmp_path / "data" / "mnist", server)


def test_missing_download_without_the_flag_says_how_to_get_it(fake_mnist, cli, tmp_path):
    code, _, err = cli("train", "vae", "--preset", "tiny_vae", "--data", "mnist", "--out", tmp_path)
    assert code == 2
    assert_one_line_error(err, "genlab data download mnist", "data.download=true")


def test_data_list_shows_complete_partial_and_missing(server, fake_mnist, cli, tmp_path):
    root = tmp_path / "data" / "mnist"
    root.mkdir(parents=True)
    (root / f"{IDX_NAMES[0]}.part").write_bytes(b"x" * 100)  # not a prefix of the file
    code, out, _ = cli("data", "list")
    assert code == 0 and re.search(r"mnist +partial: 0 of 4 files", out)
    assert re.search(r"cifar10 +not downloaded \(162\.2 MiB\)", out)
    dl.download("mnist", progress=False)  # the bad prefix fails the check: fetched afresh
    code, out, _ = cli("data", "list")
    assert re.search(r"mnist +complete", out) and files_ok(root, server)


def test_cli_rejects_unknown_names_and_root_with_several(cli, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "download", "imagenet"])
    assert exit_info.value.code == 2
    assert_one_line_error(capsys.readouterr().err, "invalid choice", "cifar10")
    code, _, err = cli("data", "download", "mnist", "kmnist", "--root", "x")
    assert code == 2
    assert_one_line_error(err, "--root takes one dataset")


@pytest.mark.parametrize("name", list(SOURCES))
def test_pinned_sources_are_well_formed(name):
    src = SOURCES[name]
    assert src.mirrors and all(m.startswith(("https://", "http://")) for m in src.mirrors)
    assert len({f.name for f in src.files}) == len(src.files)
    for f in src.files:
        assert re.fullmatch(r"[0-9a-f]{64}", f.sha256) and f.size > 1000


def test_cifar10_downloads_as_one_archive_and_trains_from_it(server, monkeypatch, tmp_path, cli):
    archive = write_archive(tmp_path / "cifar-10-binary.tar.gz", make_batches(records=8))
    body = archive.read_bytes()
    server.files[archive.name] = body
    pinned = RemoteFile(archive.name, len(body), hashlib.sha256(body).hexdigest())
    monkeypatch.setitem(SOURCES, "cifar10", Source((pinned,), (server.url("stop"),), "", "t"))
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))
    code, out, err = cli("data", "download", "cifar10")
    assert code == 0, err
    assert "cifar10: 1 file(s)" in out
    assert (tmp_path / "data" / "cifar10" / archive.name).read_bytes() == body
    data = load_data(DataConfig(name="cifar10"))
    assert data.train.x.shape == (40, 3, 32, 32) and data.test.x.shape == (8, 3, 32, 32)
