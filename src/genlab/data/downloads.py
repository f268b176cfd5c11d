"""Dataset downloads a user can trust (``genlab data download``, ``data.download=true``).

Files go to ``data.root``, else ``$GENLAB_DATA/NAME``, else ``<genlab cache>/data/NAME``
(``genlab.core.io.cache_root``). Each file is fetched into ``NAME.part`` (resumed with an HTTP
Range request when a previous attempt stopped part way), its SHA-256 is checked against the
value pinned in ``genlab.data.sources``, and only then is it renamed to its final name, so a
file under its final name is always the published one. Mirrors are tried in order; a dropped
connection is resumed a few times before the next mirror. When every mirror fails (offline, a
proxy, a mirror serving something else) the error names the URL and the folder to put the file
in by hand. Two processes downloading into one folder (e.g. the ranks of ``torchrun``) take
turns through a lock file.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tqdm import tqdm

from genlab.core.config import DataConfig
from genlab.core.errors import ConfigError, DataError
from genlab.core.io import cache_root, fsync_dir, sha256_file
from genlab.core.version import __version__
from genlab.data.sources import SOURCES, RemoteFile, Source

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent downloads are the user's care
    fcntl = None  # type: ignore[assignment]

DATA_ENV = "GENLAB_DATA"
CHUNK = 1 << 16
TIMEOUT_S = 30.0
RESUMES = 3  # attempts per mirror while each one gets further than the last
USER_AGENT = f"genlab/{__version__} (dataset download)"


class _TransferFailed(Exception):
    """One mirror could not deliver the file; the reason is the message."""


class _Unreachable(Exception):
    """No mirror delivered the file; ``args[0]`` lists each URL with its reason."""


def data_home() -> Path:
    """``$GENLAB_DATA``, else the ``data`` folder of genlab's cache directory."""
    root = os.environ.get(DATA_ENV)
    return Path(root).expanduser() if root else cache_root() / "data"


def source(name: str) -> Source:
    if name not in SOURCES:
        raise ConfigError(
            f"no download for dataset {name!r}; genlab downloads {', '.join(SOURCES)} "
            f"(others: put the files in a folder and set data.root)"
        )
    return SOURCES[name]


def default_root(name: str) -> Path:
    return data_home() / name


def missing(name: str, root: Path) -> list[RemoteFile]:
    """The files of ``name`` not (yet) under their final name in ``root``."""
    return [f for f in source(name).files if not (root / f.name).is_file()]


def dataset_root(name: str, cfg: DataConfig) -> Path:
    """The folder dataset ``name`` reads: ``data.root`` or the download folder, fetching the
    files first when ``data.download`` is set."""
    root = Path(cfg.root).expanduser() if cfg.root else default_root(name)
    if cfg.download:
        download(name, root)
    elif not cfg.root and missing(name, root):
        raise DataError(
            f"dataset {name!r} is not in {root}: run `genlab data download {name}`, add "
            f"data.download=true, or set data.root=DIR to a folder holding its files"
        )
    return root


def download(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    mirrors: Sequence[str] = (),
    progress: bool | None = None,
) -> Path:
    """Fetch every file of dataset ``name`` into ``root`` (default ``$GENLAB_DATA/NAME``),
    each checked against its pinned SHA-256; files already there are verified, not fetched
    again. ``mirrors`` (base URLs) are tried before the built-in ones. ``progress``: a bar per
    file (None: when stderr is a terminal). Returns the folder."""
    src = source(name)
    root = Path(root).expanduser() if root else default_root(name)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the download folder {root}: {e.strerror or e}") from None
    bases = (*mirrors, *src.mirrors)
    with _locked(root):
        for f in src.files:
            try:
                fetch(f, root, bases, progress)
            except _Unreachable as e:
                raise DataError(_unreachable_message(name, f, root, bases, e.args[0])) from None
    return root


def _unreachable_message(
    name: str, f: RemoteFile, root: Path, bases: Sequence[str], tried: list[tuple[str, str]]
) -> str:
    reasons = {reason for _, reason in tried}
    if len(reasons) == 1:
        where = f"{reasons.pop()} at {', '.join(url for url, _ in tried)}"
    else:
        where = "; ".join(f"{url} ({reason})" for url, reason in tried)
    todo = [g.name for g in source(name).files if not (root / g.name).is_file()]
    return (
        f"cannot download {f.name}: {where}. If this machine is offline, fetch "
        f"{', '.join(todo)} from {bases[0].rstrip('/')}/ elsewhere and put them in {root}/ "
        f"(`genlab data download {name} --root {root}` then checks them)"
    )


def fetch(f: RemoteFile, root: Path, mirrors: Sequence[str], progress: bool | None) -> Path:
    """``root/f.name``, verified; downloaded from the first mirror that delivers it."""
    final = root / f.name
    if final.is_file():
        digest = sha256_file(final)
        if digest == f.sha256:
            return final
        raise DataError(
            f"{final} is not the published file (sha256 {digest[:16]}..., expected "
            f"{f.sha256[:16]}...); delete it and download again"
        )
    part = root / f"{f.name}.part"
    tried = []
    for base in mirrors:
        url = f"{base.rstrip('/')}/{f.name}"
        # A resumed file that fails the check may have begun with someone else's bytes: then
        # the same mirror is asked once more for the whole file.
        for _ in range(2 if part.is_file() else 1):
            try:
                _transfer(url, part, f.size, progress)
            except _TransferFailed as e:
                tried.append((url, str(e)))
                break
            digest = sha256_file(part)
            if digest == f.sha256:
                os.replace(part, final)
                with contextlib.suppress(OSError):  # not every filesystem syncs a directory
                    fsync_dir(root)
                return final
            part.unlink()
        else:
            tried.append((url, f"sha256 {digest[:16]}... is not the published file's"))
    raise _Unreachable(tried)


def _transfer(url: str, part: Path, size: int, progress: bool | None) -> None:
    """Bring ``part`` to ``size`` bytes from ``url``, resuming what is there; raises
    ``_TransferFailed`` when the mirror cannot."""
    attempts = 0
    while True:
        have = part.stat().st_size if part.is_file() else 0
        if have > size:  # not a prefix of this file
            part.unlink()
            have = 0
        if have == size:
            return
        headers = {"User-Agent": USER_AGENT}
        if have:
            headers["Range"] = f"bytes={have}-"
        attempts += 1
        try:
            with urlopen(Request(url, headers=headers), timeout=TIMEOUT_S) as resp:
                if have and resp.status != 206:  # the server ignored the range: start over
                    have = 0
                _write_body(resp, part, have, size, progress)
        except HTTPError as e:
            if e.code == 416:  # our prefix is not one of the file: start over
                part.unlink(missing_ok=True)
                if attempts < RESUMES:
                    continue
            raise _TransferFailed(f"HTTP {e.code} {e.reason}") from None
        except (URLError, http.client.HTTPException, OSError) as e:
            reason = getattr(e, "reason", None) or e.__class__.__name__
            if _got_further(part, have) and attempts < RESUMES:
                continue
            raise _TransferFailed(str(reason)) from None
        got = part.stat().st_size
        if got == size:
            return
        if got > size:
            part.unlink()
            raise _TransferFailed(f"served more than the file's {size} bytes")
        if not (got > have and attempts < RESUMES):
            raise _TransferFailed(f"the connection closed after {got} of {size} bytes")


def _got_further(part: Path, had: int) -> bool:
    return part.is_file() and part.stat().st_size > had


def _write_body(resp, part: Path, offset: int, size: int, progress: bool | None) -> None:
    """Append the response body to ``part`` (truncated to ``offset`` first). A local write
    error (a full disk) is a ``DataError``: no other mirror would help."""
    try:
        out = open(part, "r+b" if offset else "wb")  # noqa: SIM115 - closed below
        out.truncate(offset)
        out.seek(offset)
    except OSError as e:
        raise DataError(f"cannot write {part}: {e.strerror or e}") from None
    bar = tqdm(
        total=size,
        initial=offset,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=part.name.removesuffix(".part"),
        disable=None if progress is None else not progress,
        file=sys.stderr,
        leave=False,
    )
    with out, bar:
        while chunk := resp.read(CHUNK):
            try:
                out.write(chunk)
            except OSError as e:
                raise DataError(
                    f"cannot write {part}: {e.strerror or e} (the file needs {size} bytes)"
                ) from None
            bar.update(len(chunk))
            if out.tell() > size:
                break


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold ``root/.download.lock`` (advisory; released when the process ends)."""
    if fcntl is None:
        yield
        return
    with open(root / ".download.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"genlab: waiting for another download into {root}", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def list_downloads() -> list[dict]:
    """One row per downloadable dataset: its folder, files present of all, bytes on disk
    (``.part`` files counted apart), complete or not. Nothing is hashed here."""
    rows = []
    for name, src in SOURCES.items():
        root = default_root(name)
        present = [root / f.name for f in src.files if (root / f.name).is_file()]
        parts = [root / f"{f.name}.part" for f in src.files]
        rows.append(
            {
                "name": name,
                "root": str(root),
                "files": len(present),
                "of": len(src.files),
                "bytes": sum(p.stat().st_size for p in present),
                "partial_bytes": sum(p.stat().st_size for p in parts if p.is_file()),
                "size": sum(f.size for f in src.files),
                "complete": len(present) == len(src.files),
                "licence": src.licence,
            }
        )
    return rows
