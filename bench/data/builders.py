"""Manifest builders for public speech corpora, run on a user's local copy.

Each corpus is one ``CorpusBuilder`` registered under its name in ``bench.data.corpus_builders``; the
builder knows the corpus layout, its official archives (for ``bench.data.download``) and its
licence. Building reads every file for duration, sample rate and sha256, so a manifest pins the
exact audio a benchmark ran on; missing transcripts are reported, not fatal, because codec
metrics need only the audio.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.audio import file_sha256
from bench.data import corpus_builders, datasets, read_manifest_auto, root_sidecar
from bench.data.folder import audio_info, read_transcript
from bench.data.manifest import Dataset, Item, write_manifest
from bench.errors import UsageError
from bench.runner.atomic import atomic_write_bytes

#: Where ``build`` writes ``<name>.jsonl`` when no output path is given (relative to the cwd).
DEFAULT_MANIFEST_DIR = Path("data_manifests")


@dataclass(frozen=True)
class Archive:
    """One official archive of a corpus and what its bytes must hash to."""

    url: str
    filename: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    mirrors: tuple[str, ...] = ()
    #: Where the checksums come from and how sure we are of them.
    provenance: str = ""


@dataclass(frozen=True)
class Utterance:
    """One audio file found by a builder's scan."""

    id: str
    path: Path
    speaker: str
    text: str | None
    prompt_path: Path | None = None
    """A speaker prompt the corpus pairs with this utterance (zero-shot TTS lists)."""
    prompt_text: str | None = None


@dataclass
class BuildResult:
    """What ``build`` wrote and what it could not use."""

    name: str
    manifest: Path
    root: Path
    items: int
    problems: list[str] = field(default_factory=list)


class CorpusBuilder:
    """Base class: subclasses say where the corpus lives (``locate``) and what is in it (``scan``)."""

    name: str = ""
    description: str = ""
    license: str = ""
    homepage: str = ""
    archives: tuple[Archive, ...] = ()

    def locate(self, source: Path) -> Path:
        """The corpus root under ``source`` (the user may point at it or at a parent)."""
        raise NotImplementedError

    def scan(self, root: Path) -> tuple[list[Utterance], list[str]]:
        """Utterances under ``root`` plus problems (e.g. missing transcripts)."""
        raise NotImplementedError

    def default_manifest(self) -> Path:
        return DEFAULT_MANIFEST_DIR / f"{self.name}.jsonl"

    def build(
        self,
        source: str | Path,
        out: str | Path | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> BuildResult:
        """Scan ``source``, hash and measure every file, write the manifest and its ``.root``."""
        source = Path(source).expanduser()
        if not source.is_dir():
            raise UsageError(f"{self.name}: source folder not found: {source}")
        root = self.locate(source).resolve()
        utterances, problems = self.scan(root)
        if not utterances:
            raise UsageError(f"{self.name}: no audio found under {root}; is this a copy of {self.description}?")
        items: list[Item] = []
        for n, utt in enumerate(sorted(utterances, key=lambda u: u.id), 1):
            rel = utt.path.relative_to(root).as_posix()
            try:
                duration, rate = audio_info(utt.path)
            except Exception as exc:  # a corrupt file must not stop the other thousands
                problems.append(f"{rel}: unreadable audio ({type(exc).__name__}: {exc}); skipped")
                continue
            prompt = utt.prompt_path.relative_to(root).as_posix() if utt.prompt_path else None
            items.append(
                Item(id=utt.id, audio=rel, duration=duration, sample_rate=rate, text=utt.text,
                     speaker=utt.speaker, sha256=file_sha256(utt.path), prompt_audio=prompt,
                     prompt_text=utt.prompt_text)
            )  # fmt: skip
            if progress is not None:
                progress(n, len(utterances))
        manifest = Path(out) if out is not None else self.default_manifest()
        write_manifest(items, manifest)
        sidecar = root_sidecar(manifest)
        atomic_write_bytes(sidecar, (str(root) + "\n").encode("utf-8"))
        return BuildResult(self.name, manifest, root, len(items), problems)


def _first_dir(source: Path, candidates: Iterable[Path], accept: Callable[[Path], bool], what: str) -> Path:
    tried = []
    for cand in candidates:
        tried.append(str(cand))
        if cand.is_dir() and accept(cand):
            return cand
    raise UsageError(f"cannot find {what} under {source}; looked at: {', '.join(tried)}")


def _missing_text(rel: str) -> str:
    return f"{rel}: no transcript found; item kept without text"


class LibriSpeechBuilder(CorpusBuilder):
    """``LibriSpeech/<split>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac`` + ``<spk>-<chapter>.trans.txt``."""

    license = "CC BY 4.0"
    homepage = "https://www.openslr.org/12"

    def __init__(self, split: str, archive: Archive):
        self.split = split
        self.name = f"librispeech-{split}"
        self.description = f"LibriSpeech {split} (OpenSLR SLR12)"
        self.archives = (archive,)

    def locate(self, source: Path) -> Path:
        cands = [source, source / self.split, source / "LibriSpeech" / self.split]
        return _first_dir(
            source, cands, lambda d: d.name == self.split and any(d.glob("*/*/*.trans.txt")), self.description
        )

    def scan(self, root: Path) -> tuple[list[Utterance], list[str]]:
        texts: dict[str, str] = {}
        problems: list[str] = []
        for trans in sorted(root.glob("*/*/*.trans.txt")):
            for lineno, line in enumerate(trans.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                if not line.strip():
                    continue
                utt_id, _, text = line.strip().partition(" ")
                if not text.strip():
                    problems.append(f"{trans.relative_to(root)}:{lineno}: line without text")
                    continue
                texts[utt_id] = text.strip()
        utts = []
        for flac in sorted(root.glob("*/*/*.flac")):
            rel = flac.relative_to(root).as_posix()
            text = texts.pop(flac.stem, None)
            if text is None:
                problems.append(_missing_text(rel))
            utts.append(Utterance(flac.stem, flac, flac.parts[-3], text))
        problems.extend(f"transcript for {uid} has no audio file" for uid in sorted(texts))
        return utts, problems


class LibriTTSBuilder(CorpusBuilder):
    """``LibriTTS/<split>/<spk>/<chapter>/<id>.wav`` + ``<id>.normalized.txt`` (or ``.original.txt``)."""

    license = "CC BY 4.0"
    homepage = "https://www.openslr.org/60"

    def __init__(self, split: str, archive: Archive):
        self.split = split
        self.name = f"libritts-{split}"
        self.description = f"LibriTTS {split} (OpenSLR SLR60)"
        self.archives = (archive,)

    def locate(self, source: Path) -> Path:
        cands = [source, source / self.split, source / "LibriTTS" / self.split]
        return _first_dir(
            source, cands, lambda d: d.name == self.split and any(d.glob("*/*/*.wav")), self.description
        )

    def scan(self, root: Path) -> tuple[list[Utterance], list[str]]:
        utts, problems = [], []
        for wav in sorted(root.glob("*/*/*.wav")):
            text = read_transcript(wav.with_suffix(".normalized.txt")) or read_transcript(
                wav.with_suffix(".original.txt")
            )
            if text is None:
                problems.append(_missing_text(wav.relative_to(root).as_posix()))
            utts.append(Utterance(wav.stem, wav, wav.parts[-3], text))
        return utts, problems


class VCTKBuilder(CorpusBuilder):
    """VCTK 0.92 (``wav48_silence_trimmed/<spk>/<spk>_<n>_mic1.flac``) or 0.80 (``wav48/<spk>/*.wav``).

    Transcripts are ``txt/<spk>/<spk>_<n>.txt`` in both. Speaker p315 has no transcripts in the
    release; its audio is kept and reported.
    """

    name = "vctk"
    description = "CSTR VCTK Corpus (0.92, or the older 0.80 layout)"
    license = "CC BY 4.0"
    homepage = "https://doi.org/10.7488/ds/2645"

    def __init__(self, archive: Archive, mic: str = "mic1"):
        self.archives = (archive,)
        self.mic = mic

    def locate(self, source: Path) -> Path:
        cands = [source, source / "VCTK-Corpus-0.92", source / "VCTK-Corpus"]
        return _first_dir(
            source,
            cands,
            lambda d: (d / "wav48_silence_trimmed").is_dir() or (d / "wav48").is_dir(),
            "a VCTK folder with wav48_silence_trimmed/ or wav48/",
        )

    def scan(self, root: Path) -> tuple[list[Utterance], list[str]]:
        if (root / "wav48_silence_trimmed").is_dir():
            suffix = f"_{self.mic}"
            found = [
                (f, f.stem[: -len(suffix)])
                for f in sorted((root / "wav48_silence_trimmed").glob(f"*/*{suffix}.flac"))
            ]
        else:
            found = [(f, f.stem) for f in sorted((root / "wav48").glob("*/*.wav"))]
        utts, problems = [], []
        for path, utt_id in found:
            speaker = path.parent.name
            text = read_transcript(root / "txt" / speaker / f"{utt_id}.txt")
            if text is None:
                problems.append(_missing_text(path.relative_to(root).as_posix()))
            utts.append(Utterance(utt_id, path, speaker, text))
        return utts, problems


# Checksums: LibriSpeech md5 values are OpenSLR's published md5sum.txt; sha256 and sizes agree
# across several independent projects (torchaudio among them). LibriTTS md5 values are OpenSLR's;
# the sha256 values are the ones torchaudio pins. VCTK 0.92: md5 and sha256 as pinned by
# torchaudio (old and current releases); DataShare itself publishes an md5 we could not re-check
# here (no network), so treat the VCTK pair as "high but second-hand" confidence.
_SLR = ("https://openslr.elda.org/resources", "https://openslr.trmal.net/resources")


class SeedTTSEvalBuilder(CorpusBuilder):
    """seed-tts-eval (Anastassiou et al., 2024): ``seedtts_testset/<lang>/meta.lst`` + ``prompt-wavs/`` + ``wavs/``.

    Each ``meta.lst`` line is ``utt|prompt_text|prompt_wav|target_text[|target_wav]``; the ground-truth
    target is the fifth field or ``wavs/<utt>.wav``. The prompt is kept in the manifest
    (``prompt_audio`` / ``prompt_text``), so ``zero_shot_tts`` uses the list's own prompt pairs. An
    entry whose target or prompt audio is missing is reported and left out (the codec ceilings and
    the ground-truth ceiling need the target). The set is distributed through Google Drive without
    checksums, so there is no ``download``.
    """

    license = "see https://github.com/BytedanceSpeech/seed-tts-eval (Common Voice CC0 / DiDiSpeech-2 subsets)"
    homepage = "https://github.com/BytedanceSpeech/seed-tts-eval"

    def __init__(self, lang: str):
        self.lang = lang
        self.name = f"seed-tts-eval-{lang}"
        self.description = f"the seed-tts-eval test set, {lang} (seedtts_testset/{lang}/meta.lst)"

    def locate(self, source: Path) -> Path:
        cands = [source, source / self.lang, source / "seedtts_testset" / self.lang]
        return _first_dir(source, cands, lambda d: (d / "meta.lst").is_file(), self.description)

    def scan(self, root: Path) -> tuple[list[Utterance], list[str]]:
        utts, problems = [], []
        for n, line in enumerate((root / "meta.lst").read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split("|")
            if len(parts) < 4:
                problems.append(f"meta.lst:{n}: expected utt|prompt_text|prompt_wav|target_text; line skipped")
                continue
            uid, prompt_text, prompt_wav, target_text = (p.strip() for p in parts[:4])
            target = root / (parts[4].strip() if len(parts) > 4 and parts[4].strip() else f"wavs/{uid}.wav")
            prompt = root / prompt_wav
            missing = [str(p.relative_to(root)) for p in (target, prompt) if not p.is_file()]
            if missing:
                problems.append(f"meta.lst:{n}: {uid}: missing {', '.join(missing)}; entry skipped")
                continue
            utts.append(Utterance(uid, target, uid, target_text, prompt, prompt_text))
        return utts, problems


def _openslr(resource: int, filename: str, *, sha256: str, md5: str, size: int | None, provenance: str) -> Archive:
    return Archive(
        url=f"https://www.openslr.org/resources/{resource}/{filename}",
        filename=filename,
        sha256=sha256,
        md5=md5,
        size=size,
        mirrors=tuple(f"{m}/{resource}/{filename}" for m in _SLR),
        provenance=provenance,
    )


BUILTIN_BUILDERS: tuple[CorpusBuilder, ...] = (
    LibriSpeechBuilder(
        "test-clean",
        _openslr(
            12, "test-clean.tar.gz",
            sha256="39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
            md5="32fa31d27d2e1cad72775fee3f4849a9", size=346663984,
            provenance="md5: OpenSLR md5sum.txt; sha256/size: torchaudio and others (high confidence)",
        ),
    ),
    LibriSpeechBuilder(
        "test-other",
        _openslr(
            12, "test-other.tar.gz",
            sha256="d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29",
            md5="fb5a50374b501bb3bac4815ee91d3135", size=328757843,
            provenance="md5: OpenSLR md5sum.txt; sha256/size: torchaudio and others (high confidence)",
        ),
    ),
    LibriTTSBuilder(
        "test-clean",
        _openslr(
            60, "test-clean.tar.gz",
            sha256="234ea5b25859102a87024a4b9b86641f5b5aaaf1197335c95090cde04fe9a4f5",
            md5="7bed3bdb047c4c197f1ad3bc412db59f", size=None,
            provenance="md5: OpenSLR; sha256: torchaudio (high confidence); size not pinned",
        ),
    ),
    LibriTTSBuilder(
        "test-other",
        _openslr(
            60, "test-other.tar.gz",
            sha256="33a5342094f3bba7ccc2e0500b9e72d558f72eb99328ac8debe1d9080402f10d",
            md5="ae3258249472a13b5abef2a816f733e4", size=None,
            provenance="md5: OpenSLR; sha256: torchaudio (high confidence); size not pinned",
        ),
    ),
    SeedTTSEvalBuilder("en"),
    SeedTTSEvalBuilder("zh"),
    VCTKBuilder(
        Archive(
            url="https://datashare.ed.ac.uk/bitstream/handle/10283/3443/VCTK-Corpus-0.92.zip",
            filename="VCTK-Corpus-0.92.zip",
            sha256="f96258be9fdc2cbff6559541aae7ea4f59df3fcaf5cf963aae5ca647357e359c",
            md5="8a6ba2946b36fcbef0212cad601f4bfa",
            mirrors=("https://datashare.is.ed.ac.uk/bitstream/handle/10283/3443/VCTK-Corpus-0.92.zip",),
            provenance="md5 and sha256 as pinned by torchaudio, not re-checked against DataShare (medium-high)",
        )
    ),
)  # fmt: skip


def manifest_locations(name: str) -> list[Path]:
    """Where a built manifest for ``name`` is looked for: the cwd's data_manifests/, then the package's."""
    from importlib.resources import files

    places = [DEFAULT_MANIFEST_DIR / f"{name}.jsonl"]
    with contextlib.suppress(ModuleNotFoundError):  # a source tree where the package is not installed
        places.append(Path(str(files("bench.data_manifests").joinpath(f"{name}.jsonl"))))
    return places


def _built_dataset(builder: CorpusBuilder) -> Callable[[], Dataset]:
    def load() -> Dataset:
        for manifest in manifest_locations(builder.name):
            if manifest.is_file():
                return read_manifest_auto(manifest, name=builder.name)
        raise UsageError(
            f"dataset {builder.name!r} is not built yet: run `codecbench data build {builder.name} SOURCE` "
            f"on a local copy of {builder.description}, or `codecbench data download {builder.name} DEST`"
        )

    load.__doc__ = f"{builder.description}; needs `codecbench data build` or `download` first ({builder.license})."
    return load


def register_builder(builder: CorpusBuilder) -> CorpusBuilder:
    """Register a builder and the named dataset that reads its default manifest."""
    corpus_builders.register(builder.name, builder)
    datasets.register(builder.name, _built_dataset(builder))
    return builder


for _builder in BUILTIN_BUILDERS:
    register_builder(_builder)


def build(name: str, source: str | Path, out: str | Path | None = None) -> BuildResult:
    """Build the manifest of corpus ``name`` from ``source`` (CLI: ``codecbench data build``)."""
    return corpus_builders.get(name).build(source, out)
