"""Loading the audited model: the embedded default, a local folder, a LoRA adapter folder or a hub id."""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch

from ..config import DEFAULT_MODEL
from ..errors import AuditError
from .embedded import DEFAULT_MODEL_NAME, converted_path, default_gguf_path, has_converted_copy
from .layers import decoder_layers
from .precision import dtype_name, pick_dtype

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ADAPTER_CONFIG = "adapter_config.json"
# Model types whose plain checkpoints _load_plain reads as from_pretrained does (tests/model/test_fast_loading.py).
PLAIN_FAMILIES = ("llama", "mistral", "qwen2")

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A causal LM with its tokenizer, and what identifies it."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    device: torch.device
    path: str = ""  # the folder or hub id it was loaded from (for engines that load it themselves: vLLM)
    is_default: bool = False  # the embedded model, for which persona vectors ship

    @property
    def num_layers(self) -> int:
        return self.model.config.num_hidden_layers

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def decoder_layers(self) -> torch.nn.ModuleList:
        return decoder_layers(self.model)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def dtype_name(self) -> str:
        """`float32`, as manifests record it."""
        return dtype_name(self.dtype)

    def fingerprint(self) -> list[float]:
        """A few embedding weights: tells models apart, survives dtype and device changes."""
        emb = cast(torch.Tensor, self.model.get_input_embeddings().weight)
        ids = torch.linspace(0, emb.shape[0] - 1, 16).long().to(emb.device)
        return [round(float(x), 5) for x in emb[ids, :8].float().flatten().cpu()]


def resolved_dtype(device: str, dtype: str, model: str) -> str:
    """The dtype a model named by `model` would load in, before loading it (`dtype` auto resolved)."""
    return dtype_name(pick_dtype(pick_device(device), dtype, model == DEFAULT_MODEL))


def pick_device(requested: str = "auto") -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device must be available."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise AuditError("no CUDA device is available (try `device` auto)", "device", "cuda")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise AuditError("MPS is not available (try `device` auto)", "device", "mps")
    return torch.device(requested)


def converted_default_model() -> Path:
    """Convert the bundled GGUF to a safetensors folder once; later loads take a fraction of a second."""
    target = converted_path()
    if has_converted_copy():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = default_gguf_path()
    log.info("converting the embedded model %s once into %s (about 20 s)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # type: ignore[assignment]  # torch types Module.__setattr__ values as tensors or modules
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if target.exists():  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.replace(target)
    return target


@contextmanager
def quiet_peft() -> Iterator[None]:
    """peft asks transformers a deprecated question (is_gradient_checkpointing); nothing for users to do."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def _load_adapter(folder: Path, device: str, dtype: str, trust_remote_code: bool) -> LoadedModel:
    """A LoRA adapter folder (from `dataset-audit train` or peft): its base model with the adapter merged in."""
    from peft import PeftModel

    training = folder / "training.json"  # written by `train`: names the base as the user gave it
    if training.is_file():
        base = json.loads(training.read_text(encoding="utf-8"))["base_model"]
    else:
        base = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))["base_model_name_or_path"]
    lm = load_model(base, device, dtype, trust_remote_code)
    with quiet_peft():
        lm.model = PeftModel.from_pretrained(lm.model, folder).merge_and_unload().eval()
    lm.name, lm.is_default = folder.resolve().name, False
    return lm


def _load_plain(folder: Path, dtype: torch.dtype) -> PreTrainedModel | None:
    """A local folder of one model.safetensors of a PLAIN_FAMILIES model (no quantization, no remote code): the
    model built without initialising weights, then given the file's tensors as its own (no copy) and its tied
    ones tied. Same weights, dtype, config and generation config as from_pretrained, in a fraction of its time
    (transformers 5); None where that does not apply (unexpected or missing tensors, say): from_pretrained then
    loads it."""
    weights = folder / "model.safetensors"
    if not weights.is_file() or not (folder / "config.json").is_file():
        return None
    raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    family, classes = raw.get("model_type"), raw.get("architectures") or []
    if family not in PLAIN_FAMILIES or len(classes) != 1 or "quantization_config" in raw or "auto_map" in raw:
        return None
    import importlib

    from safetensors.torch import load_file
    from transformers import GenerationConfig

    try:
        from transformers.initialization import no_init_weights, no_tie_weights
        from transformers.modeling_utils import local_torch_dtype
    except ImportError:  # a transformers release without them: from_pretrained loads it
        return None
    cls = getattr(importlib.import_module(f"transformers.models.{family}.modeling_{family}"), classes[0], None)
    if cls is None or not hasattr(cls, "get_expanded_tied_weights_keys"):
        return None
    config = cls.config_class.from_pretrained(folder)
    config.name_or_path, config.dtype = str(folder), dtype  # as from_pretrained records them
    with local_torch_dtype(dtype, cls.__name__), no_init_weights(), no_tie_weights():
        model = cls(config)
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in load_file(weights).items()}
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if unexpected or set(missing) != set(model.get_expanded_tied_weights_keys(all_submodels=True)):
        return None
    model.tie_weights()
    if (folder / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(folder)
    return model.eval()


def load_model(
    spec: str = DEFAULT_MODEL,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load `default`, a local HF model or LoRA adapter folder, or a hub id, in eval mode on the chosen device."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    path: Path | str
    if spec == DEFAULT_MODEL:
        path, name = converted_default_model(), DEFAULT_MODEL_NAME
    else:
        local = Path(spec).expanduser()
        if (local / ADAPTER_CONFIG).is_file():
            return _load_adapter(local, device, dtype, trust_remote_code)
        if local.exists() and not (local / "config.json").is_file():
            raise AuditError("folder has no config.json (not a Hugging Face model folder)", "model", spec)
        path, name = (local if local.exists() else spec), spec.rstrip("/").split("/")[-1]
    dev = pick_device(device)
    torch_dtype = pick_dtype(dev, dtype, spec == DEFAULT_MODEL)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = _load_plain(path, torch_dtype) if isinstance(path, Path) else None
        if model is None:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise AuditError(f"cannot load ({str(exc).splitlines()[0]})", "model", spec) from exc
    if not getattr(tokenizer, "chat_template", None):
        raise AuditError("the tokenizer has no chat template; use a chat/instruct model", "model", spec)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(dev).eval()  # type: ignore[arg-type]  # transformers' @wraps(Module.to) hides the signature of `to`
    model.requires_grad_(False)
    return LoadedModel(model=model, tokenizer=tokenizer, name=name, device=dev, path=str(path),
                       is_default=spec == DEFAULT_MODEL)
