"""Fetch a corpus's official archives, verify them, unpack them safely, then build its manifest.

Downloads stream to ``<file>.part`` and are renamed only after the checksums match, so an
interrupted or corrupted transfer never looks like a finished archive. Extraction refuses any
member that would land outside the destination (absolute paths, ``..``, links, devices).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from bench.data import corpus_builders
from bench.data.builders import Archive, BuildResult
from bench.errors import DataError, UsageError

CHUNK = 1 << 20
USER_AGENT = "codecbench-data/0.1 (+https://pypi.org/project/codecbench/)"

Progress = Callable[[str, int, int | None], None]


class OfflineError(DataError):
    """No archive URL could be reached; the message names them and the manual way out."""


def _digests(path: Path) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def verify(path: Path, archive: Archive) -> None:
    """Raise ``DataError`` unless ``path`` matches every checksum (and size) ``archive`` pins."""
    size = path.stat().st_size
    if archive.size is not None and size != archive.size:
        raise DataError(f"{path.name}: size {size} bytes, expected {archive.size} (truncated or wrong file)")
    sha, md5 = _digests(path)
    if archive.sha256 and sha != archive.sha256.lower():
        raise DataError(f"{path.name}: sha256 mismatch: got {sha}, expected {archive.sha256}")
    if archive.md5 and md5 != archive.md5.lower():
        raise DataError(f"{path.name}: md5 mismatch: got {md5}, expected {archive.md5}")


def _stream(url: str, part: Path, archive: Archive, progress: Progress | None, timeout: float) -> str | None:
    """Stream ``url`` into ``part``; return why the host could not be used, or None on success."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        return f"{url} (HTTP {exc.code} {exc.reason})"
    except (urllib.error.URLError, OSError) as exc:  # DNS failure, refused, timeout: offline
        return f"{url} ({getattr(exc, 'reason', exc)})"
    with resp, open(part, "wb") as out:
        total = resp.headers.get("Content-Length")
        total_n = int(total) if total and total.isdigit() else archive.size
        done = 0
        while True:
            try:
                block = resp.read(CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                return f"{url} (connection lost after {done} bytes: {exc})"
            if not block:
                return None
            out.write(block)
            done += len(block)
            if progress is not None:
                progress(archive.filename, done, total_n)


def fetch(archive: Archive, dest: str | Path, progress: Progress | None = None, timeout: float = 30.0) -> Path:
    """Download ``archive`` into ``dest`` (skipped when a verified copy is there); return its path.

    Tries the official URL, then the mirrors; a checksum mismatch is fatal (not retried), because
    it means the file changed upstream or was tampered with, and a human should look.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / archive.filename
    if target.is_file():
        try:
            verify(target, archive)
            return target
        except DataError:
            target.unlink()  # stale or corrupt copy: fetch again
    part = target.with_name(target.name + ".part")
    unreachable: list[str] = []
    for url in (archive.url, *archive.mirrors):
        failure = _stream(url, part, archive, progress, timeout)
        if failure is not None:
            part.unlink(missing_ok=True)
            unreachable.append(failure)
            continue
        try:
            verify(part, archive)
        except DataError as exc:
            part.unlink(missing_ok=True)
            raise DataError(f"{exc} (downloaded from {url}); the partial file was removed") from None
        os.replace(part, target)
        return target
    raise OfflineError(
        f"cannot download {archive.filename} from {archive.url}: tried {'; '.join(unreachable)}. "
        f"This machine looks offline (or the hosts are unreachable). Fetch {archive.url} elsewhere "
        f"and put it at {target}: it will be verified and used. Or unpack it yourself and run "
        "`codecbench data build`."
    )


def _check_member_path(name: str, dest: Path) -> Path:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"archive member {name!r} has an absolute path; refusing to extract")
    target = (dest / pure).resolve()
    if target != dest and dest not in target.parents:
        raise DataError(f"archive member {name!r} would be written outside {dest}; refusing to extract")
    return target


def _archive_stem(filename: str) -> str:
    for ext in (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip"):
        if filename.endswith(ext):
            return filename[: -len(ext)]
    return filename + ".d"


def _extraction_base(names: list[str], dest: Path, archive_path: Path) -> Path:
    """``dest`` when every member sits under one top folder, else ``dest/<archive stem>``.

    Official corpora ship a top folder (``LibriSpeech/``) or not (VCTK 0.92 zip); this keeps the
    destination tidy either way and gives builders a predictable place to look.
    """
    parts = [PurePosixPath(n.replace("\\", "/")).parts for n in names]
    tops = {p[0] for p in parts if p and p[0] not in (".", "")}
    single_top = len(tops) == 1 and all(len(p) > 1 or n.endswith("/") for p, n in zip(parts, names, strict=True))
    return dest if single_top else dest / _archive_stem(archive_path.name)


def safe_extract(archive_path: str | Path, dest: str | Path) -> Path:
    """Unpack a tar(.gz) or zip under ``dest``, refusing members that escape it or are links/devices.

    Every member is checked before anything is written. Returns the folder the members went to.
    """
    archive_path, dest = Path(archive_path), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    if zipfile.is_zipfile(archive_path):
        with zipfile.ZipFile(archive_path) as zf:
            infos = zf.infolist()
            for info in infos:
                _check_member_path(info.filename, dest)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise DataError(f"archive member {info.filename!r} is a symlink; refusing to extract")
            base = _extraction_base([i.filename for i in infos], dest, archive_path)
            for info in infos:
                target = _check_member_path(info.filename, base)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
        return base
    try:
        tf = tarfile.open(archive_path)  # noqa: SIM115 - closed by the with block below
    except tarfile.TarError as exc:
        raise DataError(f"{archive_path.name} is neither a tar nor a zip archive: {exc}") from exc
    with tf:
        members = tf.getmembers()
        for m in members:
            _check_member_path(m.name, dest)
            if m.issym() or m.islnk():
                raise DataError(f"archive member {m.name!r} is a link; refusing to extract")
            if not (m.isfile() or m.isdir()):
                raise DataError(f"archive member {m.name!r} is a device or special file; refusing to extract")
        base = _extraction_base([m.name + ("/" if m.isdir() else "") for m in members], dest, archive_path)
        base.mkdir(parents=True, exist_ok=True)
        if hasattr(tarfile, "data_filter"):  # defence in depth where Python has it (3.11.4+)
            tf.extractall(base, members=members, filter="data")
        else:  # pragma: no cover - members were all checked above
            tf.extractall(base, members=members)
    return base


def download(
    name: str,
    dest: str | Path,
    out: str | Path | None = None,
    *,
    archives: Sequence[Archive] | None = None,
    keep_archives: bool = True,
    progress: Progress | None = None,
    timeout: float = 30.0,
) -> BuildResult:
    """Fetch, verify and unpack corpus ``name`` into ``dest``, then build its manifest.

    ``archives`` overrides the builder's official list (mirrors, tests with a local server).
    ``out`` is the manifest path (default ``data_manifests/<name>.jsonl``).
    """
    builder = corpus_builders.get(name)
    if archives is None and not builder.archives:
        raise UsageError(f"{name} has no checksummed official archive to download ({builder.homepage}); "
                         f"fetch it yourself, then run `codecbench data build {name} SOURCE`")
    dest = Path(dest).expanduser()
    for archive in archives if archives is not None else builder.archives:
        path = fetch(archive, dest, progress=progress, timeout=timeout)
        safe_extract(path, dest)
        if not keep_archives:
            path.unlink()
    return builder.build(dest, out)
