"""Timing harness, decoding baselines, physical bounds, the architecture factory and the
fixed-shape (graphed / compiled) training step, on tiny random models."""

from __future__ import annotations

import time

import prototokens.engine.graphed as graphed
import pytest
import torch
from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT, get_arrangement
from prototokens.engine.decoding import greedy_generate, predict
from prototokens.engine.forward import batch_loss, plan_batch
from prototokens.engine.recipe import get_recipe
from prototokens.engine.train import optimize
from prototokens.inputs.architectures import (
    ARCHITECTURES,
    PAPER_ARCHITECTURES,
    random_lm,
)
from prototokens.studies import bounds
from prototokens.studies import decode_timing as timing
from prototokens.studies.throughput import run_throughput, speedups
from support import count_parameters

# --------------------------------------------------------------------------- harness


def test_time_call_synchronises_and_takes_the_median(monkeypatch):
    synced = []
    monkeypatch.setattr(timing, "sync", lambda device: synced.append(str(device)))
    sleeps = iter([0.0, 0.03, 0.001, 0.05, 0.002, 0.002])  # warm-up, then 5 timed calls

    def fn():
        time.sleep(next(sleeps))
        return "done"

    t = timing.time_call(fn, "cpu", repeats=5, warmup=1)
    assert len(t.times) == 5 and t.result == "done" and t.warmup == 1
    assert t.median_s == sorted(t.times)[2]
    assert 0.0015 < t.median_s < 0.02  # the median ignores the two slow calls
    assert t.min_s < 0.01 < max(t.times)
    assert len(synced) == 1 + 2 * 5  # after the warm-up, then before and after every call
    with pytest.raises(ValueError):
        timing.time_call(fn, "cpu", repeats=0)


def test_one_forward_decode_is_the_engine_prediction(tiny_lm):
    plan, vec = timing.one_forward_inputs(tiny_lm, 6, batch_size=3, seed=1)
    pred = timing.one_forward_decode(tiny_lm, plan, vec)  # (T,)
    assert pred.shape == (18,)
    for r in range(3):  # predict() decodes one text at deployment shape
        ids, _ = predict(tiny_lm, DEFAULT_ARRANGEMENT, {"e": vec[r, 0], "m": vec[r, 1]}, 6)
        assert pred[plan.tgt_row == r].tolist() == ids


# --------------------------------------------------------------------------- AR baselines


def _diverse_prefix(lm, B=3):
    return timing.ar_prefix(lm, batch_size=B, k=2, seed=1) * 5


@pytest.mark.parametrize("n", [1, 9])
def test_both_baselines_give_the_greedy_tokens(tiny_lm, n):
    prefix = _diverse_prefix(tiny_lm)
    ref = timing.reference_greedy(tiny_lm, prefix, n)  # no cache: the ground truth
    assert ref.shape == (3, n)
    assert torch.equal(greedy_generate(tiny_lm, prefix, n), ref)
    dec = timing.StaticDecoder(tiny_lm, 3, 2, n)
    assert dec.mode == "eager"  # CPU
    assert torch.equal(dec(prefix), ref)
    assert torch.equal(dec(prefix), ref)  # a reused decoder resets its cache



def test_the_ar_read_out_and_the_probe_use_the_one_greedy_generator(tiny_neox):
    """``predict`` of an ``ar-K`` arrangement and the read-out probe decode with
    ``greedy_generate``: the cache-free greedy tokens, end-of-text included (not masked)."""
    from prototokens.studies.readout import generate_from_vectors

    with torch.no_grad():
        tiny_neox.model.get_output_embeddings().weight[0] *= 40  # end-of-text (id 0) likeliest
    prefix = _diverse_prefix(tiny_neox, B=1)  # (1, 2, d)
    ref = timing.reference_greedy(tiny_neox, prefix, 6)[0].tolist()
    assert 0 in ref
    vectors = {"mem0": prefix[0, 0].float(), "mem1": prefix[0, 1].float()}
    assert predict(tiny_neox, "ar-2", vectors, 6)[0] == ref
    em = {"e": prefix[0, 0].float(), "m": prefix[0, 1].float()}
    assert generate_from_vectors(tiny_neox, em, 6, with_start=False) == ref


def test_random_ids_are_seeded_and_in_range():
    a = timing.random_ids(3, 5, 7, seed=2)
    assert a == timing.random_ids(3, 5, 7, seed=2) != timing.random_ids(3, 5, 7, seed=3)
    assert len(a) == 3 and all(len(r) == 5 and all(1 <= t < 7 for t in r) for r in a)


class _EagerGraph:
    """Stands in for a CUDA graph on the CPU: a replay is one more eager step."""

    def __init__(self, dec):
        self.dec = dec

    def replay(self):
        self.dec.out_tok = self.dec._step()


def test_graph_path_rewinds_the_cache_after_warm_up_and_capture(tiny_lm):
    """The graph path's warm-up and capture run three extra forwards, each advancing the static
    cache's write counter; the decoder must rewind it, else the replays write past the cache
    (the H200 failure: index_copy_ out of bounds) or attend to duplicated keys."""
    n = 9
    prefix = _diverse_prefix(tiny_lm)
    ref = timing.reference_greedy(tiny_lm, prefix, n)
    dec = timing.StaticDecoder(tiny_lm, 3, 2, n)
    dec.mode = "graph"  # take the graph branch of __call__ with an eager stand-in for the graph

    def capture():
        for _ in range(3):  # two warm-ups and the captured forward, as in _capture
            dec._step()
        dec.graph = _EagerGraph(dec)

    dec._capture = capture
    assert torch.equal(dec(prefix), ref)


def test_baselines_do_not_stop_at_end_of_text(tiny_neox):
    # make the end-of-text token (id 0) the likeliest: generate must go on, not stop or mask it
    with torch.no_grad():
        tiny_neox.model.get_output_embeddings().weight[0] *= 40
    prefix = _diverse_prefix(tiny_neox, B=2)
    ref = timing.reference_greedy(tiny_neox, prefix, 8)
    assert (ref == 0).any()
    assert torch.equal(greedy_generate(tiny_neox, prefix, 8), ref)
    assert torch.equal(timing.static_greedy(tiny_neox, prefix, 8), ref)


def test_static_decoder_rejects_a_wrong_shape_and_cuda_graphs_on_cpu(tiny_llama):
    dec = timing.StaticDecoder(tiny_llama, 2, 1, 4)
    with pytest.raises(ValueError, match="prefix shape"):
        dec(timing.ar_prefix(tiny_llama, batch_size=3))
    with pytest.raises(ValueError, match="CUDA"):
        timing.StaticDecoder(tiny_llama, 2, 1, 4, mode="graph")


# --------------------------------------------------------------------------- bounds


def test_bound_arithmetic():
    # 1B parameters at 1 PFLOP/s: 2e9 FLOPs per token -> 500,000 tokens/s
    assert bounds.compute_bound_tok_s(10**9, 1e15) == pytest.approx(5e5)
    # 1B bf16 parameters (2 GB) at 4 TB/s: 2,000 steps/s; batch 8 -> 16,000 tokens/s
    assert bounds.decode_bound_tok_s(10**9, 2, 4e12) == pytest.approx(2000)
    assert bounds.decode_bound_tok_s(10**9, 2, 4e12, batch_size=8) == pytest.approx(16000)
    assert (
        bounds.bytes_per_param(torch.bfloat16) == 2 and bounds.bytes_per_param(torch.float32) == 4
    )
    with pytest.raises(ValueError):
        bounds.compute_bound_tok_s(0, 1e15)
    # the reference H200: Llama-3.1-8B one pass at 32,911 tok/s (B=64) is 67% of the bf16 peak
    h200 = bounds.KNOWN_DEVICES["NVIDIA H200"]
    frac = 32911 / bounds.compute_bound_tok_s(8_030_261_248, h200.flops_for(torch.bfloat16))
    assert frac == pytest.approx(0.669, abs=0.002)


def test_measured_cpu_peaks_are_positive_and_plausible():
    p = bounds.measure_peaks("cpu", size=256, copy_mib=8, repeats=2)
    assert p.source == "measured on the spot" and p.device_name.startswith("cpu")
    assert 1e8 < p.flops_for(torch.float32) < 1e14
    assert 1e8 < p.bandwidth < 1e13
    with pytest.raises(ValueError, match="no peak"):
        p.flops_for(torch.float16)


# --------------------------------------------------------------------------- factory


def test_architecture_factory_matches_the_real_parameter_counts():
    # counts of the real checkpoints (the H200 anchor's params_M)
    expected = {"pythia-160m": 162.32, "llama-3.2-1b": 1235.81, "llama-3.1-8b": 8030.26,
                "llama-3.2-3b": 3212.75, "pythia-1.4b": 1414.65,
                "smollm2-135m": 134.52}  # fmt: skip
    for arch, millions in expected.items():
        assert count_parameters(arch) / 1e6 == pytest.approx(millions, abs=0.01), arch
    assert set(PAPER_ARCHITECTURES) <= set(ARCHITECTURES)


def test_random_lm_is_labelled_random_init():
    lm = random_lm("tiny-llama", hidden_size=16)
    assert lm.source == "random-init" and lm.name == "random:tiny-llama"
    assert "random init" in lm.title and lm.d_model == 16
    assert not any(p.requires_grad for p in lm.model.parameters())
    with pytest.raises(ValueError, match="unknown architecture"):
        random_lm("gpt-5")


def test_run_throughput_rows_record_the_device_and_match(monkeypatch):
    df = run_throughput(["random:tiny-llama"], lengths=[4], batch_sizes=[2], device="cpu",
                        repeats=1, warmup=0, log=lambda *_: None)  # fmt: skip
    assert set(df.method) == {"one_forward", "ar_generate", "ar_static"}
    assert (df.device == "cpu").all() and df.random_init.all() and (df.tok_s > 0).all()
    assert (df.fraction_of_bound > 0).all()
    assert df[df.method == "ar_static"].tokens_match_generate.all()
    s = speedups(df)
    assert len(s) == 1 and s.speedup_vs_generate.iloc[0] > 0


# --------------------------------------------------------------------------- fixed-shape step


def test_pad_plan_keeps_the_outputs(tiny_llama):
    arr = get_arrangement("e+m*N")
    plan = plan_batch(arr, [[5, 6, 7], [8, 9, 10, 11, 12]])
    padded = graphed.pad_plan(plan, graphed.bucket_length(plan.shape[1]))
    assert padded.shape == (2, 16)
    vec = torch.randn(2, 2, tiny_llama.d_model)
    with torch.no_grad():
        a = batch_loss(tiny_llama.model, plan, vec)
        b = batch_loss(tiny_llama.model, padded, vec)
    torch.testing.assert_close(a[0], b[0], atol=1e-5, rtol=1e-5)
    assert torch.equal(a[1], b[1])


def _compare(lm, mode):
    texts = [[5, 6, 7], [8, 9, 10, 11, 12, 13, 14], [20, 21]]  # rows converge at different steps
    rec = get_recipe("paper").with_(max_steps=60, lr=5e-2, stop_accuracy=0.5)
    ref = optimize(lm, texts, recipe=rec, seeds=[0, 1, 2])
    got = optimize(lm, texts, recipe=rec, seeds=[0, 1, 2], compiled=mode)
    assert len({r.steps for r in ref}) > 1, "test needs rows that stop at different steps"
    for a, b in zip(ref, got):
        assert (a.steps, a.status) == (b.steps, b.status)
        for k in a.vectors:
            torch.testing.assert_close(a.vectors[k], b.vectors[k], atol=1e-4, rtol=1e-4)
        assert a.predicted_ids == b.predicted_ids


@pytest.mark.parametrize("mode", ["eager", "compile"])
def test_fixed_shape_step_gives_the_eager_vectors(tiny_lm, mode, monkeypatch):
    # "compile" with the aot_eager backend: the traced forward + backward graphs, without code
    # generation (inductor on this CPU takes minutes; CUDA graphs need a GPU: bench/gpu_throughput)
    monkeypatch.setattr(graphed, "COMPILE_BACKEND", "aot_eager")
    _compare(tiny_lm, mode)


@pytest.mark.slow
def test_inductor_compiled_step_gives_the_eager_vectors(tiny_llama):
    _compare(tiny_llama, "compile")


def test_cuda_graph_mode_needs_cuda():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: bench/gpu_throughput.py checks the graphed step there")
    with pytest.raises(ValueError, match="CUDA"):
        graphed.resolve_mode("graph", torch.device("cpu"))
    assert graphed.resolve_mode(True, torch.device("cpu")) == "compile"


def _bench_module(name: str):
    """A module of bench/ (run as scripts, so not a package): loaded from its file."""
    import importlib.util
    import sys

    from prototokens.paths import repo_root

    bench = str(repo_root() / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)  # bench modules import each other by name
    spec = importlib.util.spec_from_file_location(name, f"{bench}/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_step_timing_on_a_tiny_model(tiny_llama):
    step_timing = _bench_module("step_timing")
    compare_vectors, time_bare_loop = step_timing.compare_vectors, step_timing.time_bare_loop
    time_optimize = step_timing.time_optimize

    r = time_optimize(tiny_llama, 2, 4, warmup=1, steps=2)
    assert r["step_ms"] > 0 and r["texts_steps_per_s"] > 0 and r["all_rows_full_steps"]
    assert r["timed_steps"] == 2 and r["warmup_steps"] == 1  # CPU: a host sync every step
    assert time_optimize(tiny_llama, 1, 4, warmup=1, steps=1, arrangement="e+m*N")["step_ms"] > 0
    assert time_bare_loop(tiny_llama, 2, 4, warmup=1, steps=2)["loss_finite"]
    c = compare_vectors(tiny_llama, 2, 4, steps=3, compiled="eager")
    assert c["max_abs_diff"] < 1e-5 and c["same_steps"] and c["same_predictions"] == 1.0
