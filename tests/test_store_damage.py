"""A damaged row store never stops a run (issue 23): every kind of damaged file is set aside to
quarantine with one warning line and its row recomputed to the clean run's values; a failed write
leaves nothing half-done; two processes share a store; ``verify`` checks a whole store."""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import runpy
import shutil
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import prototokens.files as files
import pytest
import torch
from prototokens.engine import store_check
from prototokens.engine.recipe import Recipe
from prototokens.engine.reconstruction import load_results, reconstruct
from prototokens.engine.store import DamagedEntry, ResultStore, StoreWriteError, cache_key, main
from prototokens.inputs.models import wrap_model
from support import count_optimize, tiny_model, tiny_tokenizer

TEXTS = ["The quick brown fox", "To be, or not", "Call me Ishmael.", "It was the best"]
RECIPE = Recipe(name="test", lr=0.1, max_steps=8)
TIMING = ["wall_time_s"]  # the only column a recomputation may change


def _run(lm, store, texts=TEXTS[:3]):
    # batch_size=1: a recomputed row sees the same batch as in the clean run (bitwise equal)
    return reconstruct(lm, texts, recipe=RECIPE, store=store, progress=False, batch_size=1)


def _cut(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _damage(kind: str, store: ResultStore, key: str, other: str) -> Path:
    """Damage the entry ``key`` one way; returns the file that the quarantine must hold."""
    row, tensors = store._row_path(key), store._tensor_path(key)
    if kind == "truncated json":
        _cut(row)
    elif kind == "zero-byte row":
        row.write_bytes(b"")
    elif kind == "invalid json":
        row.write_text("{'not': json}")
    elif kind == "row without tensors":
        tensors.unlink()
    elif kind == "tensors without row":
        row.unlink()
        return tensors
    elif kind == "zero-byte tensors":
        tensors.write_bytes(b"")
        return tensors
    elif kind == "truncated tensors":
        _cut(tensors, 0.8)
        return tensors
    elif kind == "row records another key":
        shutil.copy(store._row_path(other), row)
    elif kind == "tensors record another key":
        shutil.copy(store._tensor_path(other), tensors)
        return tensors
    return row


KINDS = {  # kind -> words the warning line gives as the reason
    "truncated json": "is not valid JSON",
    "invalid json": "is not valid JSON",
    "zero-byte row": "is empty",
    "row without tensors": "has no tensors",
    "tensors without row": "has no row",
    "zero-byte tensors": "is cut short",
    "truncated tensors": "where its header promises",
    "row records another key": "records the key",
    "tensors record another key": "records the key",
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_damaged_entry_is_set_aside_and_recomputed(kind, tiny_llama, tmp_path, monkeypatch, caplog):
    store = ResultStore(tmp_path / "runs")
    clean = _run(tiny_llama, store)
    clean_vectors = load_results(store, clean)
    key, other = clean.cache_key[1], clean.cache_key[0]
    damaged = _damage(kind, store, key, other)
    damaged_bytes = damaged.read_bytes()
    calls = count_optimize(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="prototokens.store"):
        rerun = _run(tiny_llama, store)
    assert sum(calls) == 1, "only the damaged row is recomputed"
    lines = [r.getMessage() for r in caplog.records if r.name == "prototokens.store"]
    assert len(lines) == 1 and str(damaged) in lines[0] and KINDS[kind] in lines[0], lines
    held = store.quarantine / damaged.parent.name / damaged.name
    assert held.read_bytes() == damaged_bytes, f"quarantine holds the damaged {damaged.name}"
    cols = [c for c in clean.columns if c not in TIMING]
    pd.testing.assert_frame_equal(rerun[cols], clean[cols])
    for k, res in load_results(store, rerun).items():
        for slot, v in res["vectors"].items():
            assert torch.equal(v, clean_vectors[k]["vectors"][slot])
    assert store.verify() == (3, []), "the store is whole again"


def test_quarantine_keeps_the_damaged_bytes(tiny_llama, tmp_path):
    store = ResultStore(tmp_path)
    key = _run(tiny_llama, store, TEXTS[:1]).cache_key[0]
    store._row_path(key).write_text('{"cache_key": "cut sh')
    assert store.get(key) is None
    assert (store.quarantine / "rows" / f"{key}.json").read_text() == '{"cache_key": "cut sh'
    assert (store.quarantine / "tensors" / f"{key}.safetensors").exists(), "its pair moves too"
    # a second damaged copy never overwrites the first
    store._row_path(key).write_text("[]")
    assert store.get(key) is None and (store.quarantine / "rows" / f"{key}.json.1").exists()
    log = (store.quarantine / "log.tsv").read_text().splitlines()
    assert len(log) == 3 and "not valid JSON" in log[0] and "not a row object" in log[2]


def test_damaged_tensors_after_the_run_name_the_file(tiny_llama, tmp_path, monkeypatch):
    """load_results cannot recompute: it sets the entry aside and names it; the next
    reconstruct recomputes the row."""
    store = ResultStore(tmp_path)
    df = _run(tiny_llama, store, TEXTS[:2])
    path = store._tensor_path(df.cache_key[0])
    path.write_bytes(b"")
    with pytest.raises(DamagedEntry, match=str(path)):
        load_results(store, df)
    assert (store.quarantine / "tensors" / path.name).exists() and not path.exists()
    calls = count_optimize(monkeypatch)
    again = _run(tiny_llama, store, TEXTS[:2])
    assert sum(calls) == 1 and len(load_results(store, again)) == 2


def test_safetensors_header_checks(tmp_path):
    from safetensors.torch import save

    path = tmp_path / "k.safetensors"
    blob = save({"a": torch.ones(4), "b": torch.zeros(2, 3)}, metadata={"cache_key": "k"})
    path.write_bytes(blob)
    assert store_check.tensors_problem(path, "k") is None
    assert "records the key" in store_check.tensors_problem(path, "other")
    path.write_bytes(blob + b"\0")
    assert "padded" in store_check.tensors_problem(path, "k")
    path.write_bytes(blob[:5])
    assert "cut short" in store_check.tensors_problem(path, "k")
    path.write_bytes((10).to_bytes(8, "little") + b"not json!!")
    assert "unreadable safetensors header" in store_check.tensors_problem(path, "k")


@pytest.mark.parametrize("fail_at", ["tensors", "row"])
def test_failed_write_leaves_nothing_half_done(fail_at, tiny_llama, tmp_path, monkeypatch):
    """The disk fills up while the second row is written: the error names the store and the
    cause, no temporary or partial file stays, the first row stays readable."""
    store = ResultStore(tmp_path / "runs")
    real, writes = files.write_synced, []

    def disk_full(path, data):
        writes.append(path)
        if len(writes) == (3 if fail_at == "tensors" else 4):  # 2 files per row
            real(path, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, data)

    monkeypatch.setattr(files, "write_synced", disk_full)
    with pytest.raises(StoreWriteError, match="No space left on device") as err:
        _run(tiny_llama, store)
    assert err.value.errno == errno.ENOSPC and str(store.root) in str(err.value)
    assert not list(store.root.rglob("*.tmp")), "no temporary file left"
    assert len(list(store.root.rglob("*.json"))) == 1
    assert len(list(store.root.rglob("*.safetensors"))) == 1
    assert len(store.rows()) == 1 and store.verify() == (1, [])
    monkeypatch.setattr(files, "write_synced", real)
    calls = count_optimize(monkeypatch)
    assert len(_run(tiny_llama, store)) == 3 and sum(calls) == 2


def test_a_reader_waits_for_a_write_in_progress(tmp_path):
    """A reader that finds tensors without their row while another writer holds the lock (it
    is between its two files) waits, looks again and sets nothing aside."""
    store = ResultStore(tmp_path)
    key = cache_key(t="race")
    store.put(key, {"x": 1}, {"vec.e": torch.ones(2)})
    row_bytes = store._row_path(key).read_bytes()
    store._row_path(key).unlink()
    holding = threading.Event()

    def writer():
        with store._lock():
            holding.set()
            time.sleep(0.3)
            store._row_path(key).write_bytes(row_bytes)

    t = threading.Thread(target=writer)
    t.start()
    holding.wait()
    assert store.get(key) == {"x": 1, "cache_key": key}
    t.join()
    assert not store.quarantine.exists()


def _worker(root: str, texts: list[str], go, out) -> None:
    """One of two processes sharing a store: a tiny model built here, started together."""
    torch.set_num_threads(1)
    lm = wrap_model(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")
    go.wait(60)
    out.put(list(_run(lm, ResultStore(root), texts).cache_key))


@pytest.mark.filterwarnings("ignore:.*fork:DeprecationWarning")  # children only build a tiny model
def test_two_processes_share_a_store(tiny_llama, tmp_path, monkeypatch):
    """Two processes reconstruct overlapping texts (the shared ones in opposite orders) into one
    store at once: both finish, every row is intact, and a rerun computes nothing. (Forked: the
    children inherit the imports, so the test takes seconds.)"""
    ctx = multiprocessing.get_context("fork")
    root, go, out = str(tmp_path / "runs"), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(root, texts, go, out))
        for texts in (TEXTS[:3], TEXTS[3:0:-1])
    ]
    for p in procs:
        p.start()
    go.set()
    keys = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = ResultStore(root)
    assert store.verify() == (4, []) and not store.quarantine.exists()
    calls = count_optimize(monkeypatch)
    df = _run(tiny_llama, store, TEXTS)
    assert sum(calls) == 0, "a rerun computes nothing"
    assert set(df.cache_key) == set(keys[0]) | set(keys[1])


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")  # runpy, in-process
def test_verify_command_lists_and_sets_aside(tiny_llama, tmp_path, capsys, monkeypatch):
    store = ResultStore(tmp_path / "runs")
    df = _run(tiny_llama, store, TEXTS[:2])
    bad = store._row_path(df.cache_key[0])
    _cut(bad)
    stale = store.root / "rows" / ".x.json.abc.tmp"
    stale.write_text("{")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    assert main(["verify", str(store.root), "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert f"damaged: {bad} is not valid JSON" in out and str(stale) in out
    assert "1 intact rows, 2 damaged entries would be set aside" in out and bad.exists()
    assert main(["verify", str(store.root)]) == 1
    assert not bad.exists() and not stale.exists()
    assert (store.quarantine / "rows" / bad.name).exists()
    assert (store.quarantine / "rows" / stale.name).exists()
    # what `python -m prototokens.engine.store verify ROOT` runs (in this process: no imports)
    monkeypatch.setattr(sys, "argv", ["store", "verify", str(store.root)])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("prototokens.engine.store", run_name="__main__")
    assert done.value.code == 0 and "1 intact rows, 0 damaged entries" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["verify", str(tmp_path / "nowhere")])
