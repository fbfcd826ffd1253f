"""The progress lines a batch log follows (engine.progress): when they come, what they say."""

import io

import pytest
from prototokens.engine.progress import ProgressLog, every_s, progress_label
from prototokens.engine.recipe import Recipe
from prototokens.engine.reconstruction import reconstruct
from prototokens.engine.train import Progress
from prototokens.inputs.data.base import exact_text


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_a_line_at_start_then_at_most_every_interval_then_at_the_end():
    clock, out = Clock(), io.StringIO()
    with progress_label("Table 3 capacity"), progress_label("pg19"):
        log = ProgressLog("bos+e paper", rows=12, batches=2, max_steps=100, every=60,
                          stream=out, clock=clock)  # fmt: skip
    log.start_batch(8, (16, 16))
    for step in range(1, 101):  # 1 s per step, 2 rows stop at step 50
        clock.t = float(step)
        log(Progress(step, 100, 8, 2 if step >= 50 else 0, 0.5, clock.t))
    log.start_batch(4, (16, 23))
    clock.t = 101.0
    log(Progress(1, 100, 4, 0, 0.5, 1.0))
    clock.t = 150.0
    log.close()
    lines = out.getvalue().splitlines()
    # step 1 (first call), step 61 (60 s later), step 1 of batch 2 at 101 s (40 s: no), close
    assert len(lines) == 3 and log.lines == 3
    assert lines[0].startswith("[progress] Table 3 capacity · pg19 | bos+e paper N=16 | rows 0/12")
    assert "batch 1/2 step 1/100" in lines[0] and "1s elapsed, at most 3m19s left" in lines[0]
    assert "rows 2/12" in lines[1] and "step 61/100" in lines[1]
    # 61 steps in 61 s: 39 left in this batch + 100 in the next
    assert "1m01s elapsed, at most 2m19s left" in lines[1]
    assert "N=16-23 | rows 12/12 | done in 2m30s (101 steps)" in lines[2]


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.setenv("PROTOTOKENS_PROGRESS_EVERY_S", "5")
    assert every_s() == 5
    monkeypatch.setenv("PROTOTOKENS_PROGRESS_EVERY_S", "soon")
    with pytest.raises(ValueError, match="PROTOTOKENS_PROGRESS_EVERY_S"):
        every_s()


def test_reconstruct_writes_lines_to_the_process_stderr(tiny_llama, tmp_path, capfd):
    ids = tiny_llama.tokenizer("the quick brown fox jumps over the lazy dog " * 2,
                               add_special_tokens=False)["input_ids"]  # fmt: skip
    fields = {"source": "pg19", "label": "p"}
    texts = [exact_text(tiny_llama.tokenizer, ids[k : k + 6], text_id=f"t{k}", **fields)
             for k in (0, 1)]  # fmt: skip
    with progress_label("unit test"):
        reconstruct(tiny_llama, texts, recipe=Recipe(name="r", max_steps=3), store=tmp_path,
                    progress="log")  # fmt: skip
    err = capfd.readouterr().err.splitlines()
    lines = [ln for ln in err if ln.startswith("[progress]")]
    assert lines[0].startswith("[progress] unit test | ") and "rows 0/2" in lines[0]
    assert "rows 2/2 | done in" in lines[-1]
    reconstruct(tiny_llama, texts, recipe=Recipe(name="r", max_steps=3), store=tmp_path,
                progress="log")  # fmt: skip
    assert "[progress]" not in capfd.readouterr().err  # cached: nothing trained, nothing said
