"""Data layer: embedded corpus, folder datasets, manifests, corpus builders and downloads.

Every corpus here is a tiny fake laid out like the real one; downloads use a local HTTP server
on 127.0.0.1 or file:// URLs, never the network.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import io
import json
import socket
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.audio import file_sha256
from bench.data import corpus_builders as builders
from bench.data import datasets, resolve_dataset
from bench.data.builders import Archive
from bench.data.download import OfflineError, download, fetch, safe_extract
from bench.data.embedded import embedded_dir
from bench.data.manifest import read_manifest
from bench.errors import DataError, UnknownNameError, UsageError


def tone(path: Path, seconds: float = 0.3, rate: int = 16000, freq: float = 440.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), rate, subtype="PCM_16")
    return path


# --- embedded corpus -------------------------------------------------------------------------


def test_embedded_corpus_is_complete_and_consistent():
    ds = resolve_dataset()  # the default
    assert ds.name == "embedded" and not ds.problems
    assert len(ds.items) >= 24
    assert len({it.speaker for it in ds.items}) >= 3
    assert [it.id for it in ds.items] == sorted(it.id for it in ds.items)
    for it in ds.items:
        assert it.error is None and it.text and len(it.text.split()) >= 5
        path = ds.path_of(it)
        assert file_sha256(path) == it.sha256, it.id
        info = sf.info(str(path))
        assert info.subtype == "PCM_16" and info.channels == 1
        assert info.samplerate == it.sample_rate
        assert 3.0 <= info.frames / info.samplerate <= 8.0, it.id
        assert abs(info.frames / info.samplerate - it.duration) < 1e-3
    total = sum(p.stat().st_size for p in (embedded_dir() / "audio").glob("*.flac"))
    assert total < 4_000_000
    assert {p.name for p in (embedded_dir() / "audio").iterdir()} == {Path(it.audio).name for it in ds.items}


def test_embedded_levels_are_normalised():
    ds = resolve_dataset("embedded")
    for it in ds.items[::7]:
        x, sr = sf.read(ds.path_of(it))
        assert -3.2 < 20 * np.log10(np.abs(x).max()) < -2.8
        edge = int(0.05 * sr)  # the first/last 50 ms are the kept ~100 ms of silence
        assert np.abs(x[:edge]).max() < 0.05 and np.abs(x[-edge:]).max() < 0.05


# --- resolve_dataset -------------------------------------------------------------------------


def test_unknown_dataset_name_suggests_close_names():
    with pytest.raises(UnknownNameError) as err:
        resolve_dataset("embeded")
    assert "embedded" in err.value.suggestions
    assert isinstance(err.value, UsageError)


def test_registered_names_and_builders():
    assert "embedded" in datasets.names()
    expected = {"librispeech-test-clean", "librispeech-test-other", "libritts-test-clean", "libritts-test-other", "vctk"}
    assert expected <= set(builders.names())
    for name in expected:
        arch = builders.get(name).archives
        assert arch and all(a.sha256 and len(a.sha256) == 64 and a.md5 and len(a.md5) == 32 for a in arch)


def test_unbuilt_corpus_name_tells_how_to_build(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="codecbench data build librispeech-test-clean"):
        resolve_dataset("librispeech-test-clean")


def test_missing_manifest_path_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="manifest not found"):
        resolve_dataset(str(tmp_path / "nope.jsonl"))


# --- manifests -------------------------------------------------------------------------------


def test_manifest_problems_are_reported_not_fatal(tmp_path):
    tone(tmp_path / "a.wav")
    lines = [
        json.dumps({"id": "a", "audio": "a.wav"}),
        "{not json",
        json.dumps({"id": "a", "audio": "a.wav"}),
        json.dumps({"id": "esc", "audio": "../outside.wav"}),
        json.dumps({"id": "abs", "audio": "/etc/passwd"}),
        json.dumps({"audio": "no-id.wav"}),
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    ds = resolve_dataset(str(tmp_path / "m.jsonl"))
    assert ds.root == tmp_path
    assert [it.id for it in ds.items] == ["a", "esc", "abs"]
    assert any("malformed JSON" in p for p in ds.problems)
    assert any("duplicate id 'a'" in p for p in ds.problems)
    assert any("needs string fields" in p for p in ds.problems)
    by_id = {it.id: it for it in ds.items}
    assert by_id["a"].error is None
    assert "escapes the data root" in by_id["esc"].error
    assert "absolute" in by_id["abs"].error


def test_manifest_root_override(tmp_path):
    tone(tmp_path / "audio" / "x.wav")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "m.jsonl").write_text(json.dumps({"id": "x", "audio": "x.wav"}) + "\n")
    ds = resolve_dataset(str(tmp_path / "lists" / "m.jsonl"), root=str(tmp_path / "audio"))
    assert ds.path_of(ds.items[0]).is_file()


# --- folder datasets -------------------------------------------------------------------------


def test_folder_dataset_ids_transcripts_and_unreadable_files(tmp_path):
    tone(tmp_path / "a.wav", 0.25, 16000)
    tone(tmp_path / "spk1" / "a.wav", 0.5, 8000)
    tone(tmp_path / "spk1" / "b.flac", 0.4, 24000)
    (tmp_path / "spk1" / "b.txt").write_text("  hello\n  world ")
    tone(tmp_path / "dup.wav")
    tone(tmp_path / "dup.flac")
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really a wave file")
    (tmp_path / "notes.md").write_text("ignored")
    ds = resolve_dataset(str(tmp_path))
    by_id = {it.id: it for it in ds.items}
    assert set(by_id) == {"a", "spk1/a", "spk1/b", "dup.wav", "dup.flac", "broken"}
    assert by_id["spk1/b"].text == "hello world" and by_id["spk1/b"].speaker == "spk1"
    assert by_id["spk1/a"].sample_rate == 8000 and by_id["spk1/a"].duration == pytest.approx(0.5)
    assert by_id["a"].sha256 == file_sha256(tmp_path / "a.wav")
    assert by_id["broken"].error and "cannot read audio broken.wav" in by_id["broken"].error
    assert any("broken.wav" in p for p in ds.problems)
    assert all(it.error is None for i, it in by_id.items() if i != "broken")
    assert resolve_dataset(str(tmp_path)).manifest_sha256 == ds.manifest_sha256  # stable cache key


def test_empty_folder_reports_a_problem(tmp_path):
    ds = resolve_dataset(str(tmp_path))
    assert ds.items == [] and ds.problems


# --- builders --------------------------------------------------------------------------------


def fake_librispeech(base: Path, split: str = "test-clean") -> Path:
    chapter = base / "LibriSpeech" / split / "1089" / "134686"
    tone(chapter / "1089-134686-0000.flac")
    tone(chapter / "1089-134686-0001.flac", 0.5)
    (chapter / "1089-134686.trans.txt").write_text(
        "1089-134686-0000 HE HOPED THERE WOULD BE STEW\n1089-134686-0002 A LINE WITH NO AUDIO\n"
    )
    tone(base / "LibriSpeech" / split / "121" / "121726" / "121-121726-0000.flac")
    (base / "LibriSpeech" / split / "121" / "121726" / "121-121726.trans.txt").write_text(
        "121-121726-0000 ALSO A HEDGE\n"
    )
    return base


def test_librispeech_builder(tmp_path):
    fake_librispeech(tmp_path / "corpus")
    out = tmp_path / "manifests" / "ls.jsonl"
    res = builders.get("librispeech-test-clean").build(tmp_path / "corpus", out)
    assert res.items == 3 and res.root == (tmp_path / "corpus" / "LibriSpeech" / "test-clean").resolve()
    assert any("1089-134686-0001" in p and "no transcript" in p for p in res.problems)
    assert any("1089-134686-0002" in p and "no audio" in p for p in res.problems)
    ds = resolve_dataset(str(out))  # the .root sidecar points at the corpus
    by_id = {it.id: it for it in ds.items}
    assert by_id["1089-134686-0000"].text == "HE HOPED THERE WOULD BE STEW"
    assert by_id["1089-134686-0000"].speaker == "1089"
    assert by_id["1089-134686-0001"].text is None
    for it in ds.items:
        assert file_sha256(ds.path_of(it)) == it.sha256 and it.sample_rate == 16000


def test_librispeech_builder_accepts_the_split_folder_and_default_output(tmp_path, monkeypatch):
    fake_librispeech(tmp_path / "c", "test-other")
    monkeypatch.chdir(tmp_path)
    res = builders.get("librispeech-test-other").build(tmp_path / "c" / "LibriSpeech" / "test-other")
    assert res.manifest == Path("data_manifests/librispeech-test-other.jsonl") and res.items == 3
    ds = resolve_dataset("librispeech-test-other")  # a built corpus is found by name
    assert len(ds.items) == 3 and ds.path_of(ds.items[0]).is_file()


def test_libritts_builder(tmp_path):
    ch = tmp_path / "LibriTTS" / "test-clean" / "1089" / "134686"
    tone(ch / "1089_134686_000001_000001.wav", rate=24000)
    (ch / "1089_134686_000001_000001.normalized.txt").write_text("Normalized text.")
    (ch / "1089_134686_000001_000001.original.txt").write_text("Original text.")
    tone(ch / "1089_134686_000002_000000.wav", rate=24000)
    (ch / "1089_134686_000002_000000.original.txt").write_text("Only original.")
    tone(ch / "1089_134686_000003_000000.wav", rate=24000)
    res = builders.get("libritts-test-clean").build(tmp_path, tmp_path / "tts.jsonl")
    ds = read_manifest(tmp_path / "tts.jsonl", root=res.root)
    texts = {it.id: it.text for it in ds.items}
    assert texts == {
        "1089_134686_000001_000001": "Normalized text.",
        "1089_134686_000002_000000": "Only original.",
        "1089_134686_000003_000000": None,
    }
    assert res.problems == ["1089/134686/1089_134686_000003_000000.wav: no transcript found; item kept without text"]
    assert {it.sample_rate for it in ds.items} == {24000}


def test_vctk_092_builder(tmp_path):
    root = tmp_path / "VCTK-Corpus-0.92"
    for spk, n in (("p225", "001"), ("p225", "002"), ("p315", "001")):
        tone(root / "wav48_silence_trimmed" / spk / f"{spk}_{n}_mic1.flac", rate=48000)
        tone(root / "wav48_silence_trimmed" / spk / f"{spk}_{n}_mic2.flac", rate=48000)
    (root / "txt" / "p225").mkdir(parents=True)
    (root / "txt" / "p225" / "p225_001.txt").write_text("Please call Stella.\n")
    (root / "txt" / "p225" / "p225_002.txt").write_text("Ask her to bring these things.\n")
    res = builders.get("vctk").build(tmp_path, tmp_path / "vctk.jsonl")
    ds = resolve_dataset(str(tmp_path / "vctk.jsonl"))
    assert [it.id for it in ds.items] == ["p225_001", "p225_002", "p315_001"]
    assert ds.items[0].text == "Please call Stella." and ds.items[0].audio.endswith("_mic1.flac")
    assert ds.items[2].speaker == "p315" and ds.items[2].text is None
    assert len(res.problems) == 1 and "p315_001_mic1.flac" in res.problems[0]


def test_vctk_080_builder(tmp_path):
    root = tmp_path / "VCTK-Corpus"
    tone(root / "wav48" / "p226" / "p226_003.wav", rate=48000)
    (root / "txt" / "p226").mkdir(parents=True)
    (root / "txt" / "p226" / "p226_003.txt").write_text("Six spoons of fresh snow peas.")
    res = builders.get("vctk").build(tmp_path, tmp_path / "v.jsonl")
    assert res.items == 1 and not res.problems
    assert resolve_dataset(str(tmp_path / "v.jsonl")).items[0].text == "Six spoons of fresh snow peas."


def test_builder_on_wrong_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot find"):
        builders.get("librispeech-test-clean").build(tmp_path, tmp_path / "x.jsonl")
    with pytest.raises(UsageError, match="not found"):
        builders.get("vctk").build(tmp_path / "missing", tmp_path / "x.jsonl")


def test_builder_skips_unreadable_audio(tmp_path):
    ch = tmp_path / "LibriTTS" / "test-other" / "1" / "2"
    tone(ch / "1_2_000001_000000.wav")
    (ch / "1_2_000001_000000.normalized.txt").write_text("ok")
    (ch / "1_2_000002_000000.wav").write_bytes(b"garbage")
    (ch / "1_2_000002_000000.normalized.txt").write_text("bad")
    res = builders.get("libritts-test-other").build(tmp_path, tmp_path / "m.jsonl")
    assert res.items == 1 and any("unreadable audio" in p for p in res.problems)


# --- downloads -------------------------------------------------------------------------------


def fake_librispeech_tar(tmp_path: Path) -> Path:
    src = fake_librispeech(tmp_path / "src")
    archive = tmp_path / "serve" / "test-clean.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src / "LibriSpeech", arcname="LibriSpeech")
    return archive


@contextlib.contextmanager
def local_server(directory: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *a, **k: None  # type: ignore[assignment]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_from_local_server_builds_the_manifest(tmp_path):
    archive = fake_librispeech_tar(tmp_path)
    with local_server(archive.parent) as base:
        spec = Archive(f"{base}/test-clean.tar.gz", "test-clean.tar.gz", sha256=sha256_of(archive),
                       md5=hashlib.md5(archive.read_bytes()).hexdigest(), size=archive.stat().st_size)  # fmt: skip
        res = download("librispeech-test-clean", tmp_path / "dest", tmp_path / "m.jsonl", archives=[spec])
    assert res.items == 3
    assert (tmp_path / "dest" / "test-clean.tar.gz").is_file()
    assert not list((tmp_path / "dest").glob("*.part"))
    ds = resolve_dataset(str(tmp_path / "m.jsonl"))
    assert all(ds.path_of(it).is_file() for it in ds.items)
    # A second run reuses the verified archive without any server.
    res2 = download("librispeech-test-clean", tmp_path / "dest", tmp_path / "m.jsonl", archives=[spec])
    assert res2.items == 3


def test_download_checksum_mismatch_leaves_nothing(tmp_path):
    archive = fake_librispeech_tar(tmp_path)
    with local_server(archive.parent) as base:
        spec = Archive(f"{base}/test-clean.tar.gz", "test-clean.tar.gz", sha256="0" * 64)
        with pytest.raises(DataError, match="sha256 mismatch"):
            download("librispeech-test-clean", tmp_path / "dest", tmp_path / "m.jsonl", archives=[spec])
    assert list((tmp_path / "dest").iterdir()) == []
    assert not (tmp_path / "m.jsonl").exists()


def test_download_falls_back_to_a_mirror(tmp_path):
    archive = fake_librispeech_tar(tmp_path)
    with local_server(archive.parent) as base:
        spec = Archive(f"{base}/missing.tar.gz", "test-clean.tar.gz", sha256=sha256_of(archive),
                       mirrors=(archive.as_uri(),))  # fmt: skip
        path = fetch(spec, tmp_path / "dest")
    assert sha256_of(path) == sha256_of(archive)


def test_download_offline_names_the_url(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/test-clean.tar.gz"
    spec = Archive(url, "test-clean.tar.gz", sha256="0" * 64)
    with pytest.raises(OfflineError) as err:
        download("librispeech-test-clean", tmp_path / "dest", archives=[spec], timeout=5)
    assert url in str(err.value) and "offline" in str(err.value)
    assert not list((tmp_path / "dest").glob("*.part"))


def test_unknown_download_name(tmp_path):
    with pytest.raises(UnknownNameError):
        download("librispeech-test-cleen", tmp_path)


def test_safe_extract_rejects_escaping_members(tmp_path):
    for name in ("../evil.txt", "/abs/evil.txt", "ok/../../evil.txt"):
        bad = tmp_path / "bad.tar"
        with tarfile.open(bad, "w") as tf:
            info = tarfile.TarInfo(name)
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))
        with pytest.raises(DataError, match="outside|absolute"):
            safe_extract(bad, tmp_path / "out")
    link = tmp_path / "link.tar"
    with tarfile.open(link, "w") as tf:
        info = tarfile.TarInfo("x/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(DataError, match="link"):
        safe_extract(link, tmp_path / "out")
    badzip = tmp_path / "bad.zip"
    with zipfile.ZipFile(badzip, "w") as zf:
        zf.writestr("../evil.txt", "evil")
    with pytest.raises(DataError, match="outside"):
        safe_extract(badzip, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*evil*"))


def test_zip_without_top_folder_unpacks_into_its_own_folder(tmp_path):
    # VCTK 0.92 is a zip whose members have no common top folder.
    buf = io.BytesIO()
    sf.write(buf, np.zeros(4800), 48000, format="FLAC", subtype="PCM_16")
    z = tmp_path / "serve" / "VCTK-Corpus-0.92.zip"
    z.parent.mkdir()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("wav48_silence_trimmed/p225/p225_001_mic1.flac", buf.getvalue())
        zf.writestr("txt/p225/p225_001.txt", "Please call Stella.")
        zf.writestr("speaker-info.txt", "ID AGE GENDER ACCENTS")
    spec = Archive(z.as_uri(), z.name, sha256=sha256_of(z))
    res = download("vctk", tmp_path / "dest", tmp_path / "v.jsonl", archives=[spec], keep_archives=False)
    assert res.root == (tmp_path / "dest" / "VCTK-Corpus-0.92").resolve() and res.items == 1
    assert not (tmp_path / "dest" / z.name).exists()
