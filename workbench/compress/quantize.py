"""Quantized variants of a torch embedder: bf16, int8 (torch, torchao, ONNX Runtime) and int4.

:func:`quantize_model` returns a **new** embedder whose fingerprint names the scheme and its
options, so a store built with the float model refuses vectors or queries of a quantized one
(and the other way round), and the embedding cache keeps them apart. :func:`rebuild_quantized`
makes the same embedder again from that fingerprint; :func:`quantization_support` tries every
scheme on a tiny input and says which run here and why the others do not.

Measured on all-MiniLM-L6-v2, 2 AVX2 cores without VNNI (``benchmarks/_quantize_probe.py``):
ONNX Runtime dynamic int8 with per-channel weights keeps ~99.6 % of the STS-B Spearman and
~0.87-0.9 of the fp32 10 nearest neighbours; torch's per-tensor dynamic int8 keeps far fewer,
because fbgemm quantizes activations to 7 bits on CPUs without VNNI.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .._atomic import write_atomic
from .._validation import check_texts
from ..embed.base import BaseEmbedder, Embedder, Fingerprint
from ..embed.cache import default_cache_dir
from ..embed.minilm import sentence_vectors
from ..embed.tokens import TokenIds
from ..errors import InvalidInputError, MissingDependencyError, ModelMismatchError


class _KnownImportNoise(logging.Filter):
    """Drops the log lines torchao's import prints on every CPU-only machine.

    torchao tries to load its CUDA kernels (``Failed to load ..._C_mxfp8...so``) and
    registers enums torch now handles itself (torch's ``_pytree`` says "is an Enum subclass
    and is now natively supported ..."): warnings about torchao's own build that a user can do
    nothing about. Only these two messages are dropped; the loggers keep everything else.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ((msg.startswith("Failed to load") and "torchao" in msg)
                    or "natively supported by torch.compile as an opaque value type" in msg)


for _name in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_name).addFilter(_KnownImportNoise())

__all__ = [
    "SCHEMES",
    "QuantizedEmbedder",
    "UnsupportedSchemeError",
    "quantization_support",
    "quantize_model",
    "rebuild_quantized",
]

SCHEMES: tuple[str, ...] = ("bf16", "int8-dynamic", "int8-weight", "int4-weight", "onnx-int8")

_BACKENDS = {
    "bf16": "torch (bfloat16 weights and activations)",
    "int8-dynamic": "torch.ao.quantization.quantize_dynamic (fbgemm/x86)",
    "int8-weight": "torchao Int8WeightOnlyConfig",
    "int4-weight": "torchao PrototypeInt4WeightOnlyConfig (Int4OpaqueTensor, bf16)",
    "onnx-int8": "onnxruntime quantize_dynamic of a fused BERT graph (QAttention, MatMulInteger)",
}
# Options each scheme takes, with their defaults (recorded in the fingerprint).
_DEFAULTS: dict[str, dict[str, Any]] = {
    "bf16": {},
    "int8-dynamic": {"per_channel": True, "exclude": []},
    "int8-weight": {"exclude": []},
    "int4-weight": {"group_size": 32, "exclude": []},
    "onnx-int8": {"per_channel": True, "exclude": []},
}


class UnsupportedSchemeError(MissingDependencyError):
    """A quantization scheme cannot run with this installation or on this CPU."""


class QuantizedEmbedder(BaseEmbedder):
    """An embedder running a quantized copy of a base model (made by :func:`quantize_model`).

    Vectors are float32 and L2-normalised, like the base model's.

    Attributes
    ----------
    base_fingerprint : Fingerprint
        The float model this one was made from.
    scheme : str
        One of :data:`SCHEMES`.
    options : dict
        The scheme's options, defaults included (``exclude``, ``per_channel``, ``group_size``).
    module : torch.nn.Module or None
        The quantized transformer, for the torch schemes.
    onnx_path : pathlib.Path or None
        The quantized ONNX file, for ``"onnx-int8"``.
    calibration_cosine_ : float or None
        Mean cosine between base and quantized vectors of the `calibration` texts, if given.
    n_params : int or None
        Parameters of the float model it was made from.
    """

    def __init__(
        self, *, base_fingerprint: Fingerprint, scheme: str, options: dict[str, Any],
        tokens: TokenIds, forward: Callable[[NDArray[np.int64], NDArray[np.int64]], Any],
        backend: str, module: Any = None, onnx_path: Path | None = None,
        n_params: int | None = None, batch_size: int = 64, cache: bool | str | Path = True,
        max_batch_tokens: int | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, cache=cache, max_batch_tokens=max_batch_tokens)
        self._tokens = tokens
        self.base_fingerprint = base_fingerprint
        self.scheme = scheme
        self.options = options
        self.backend = backend
        self.module = module
        self.onnx_path = onnx_path
        self.calibration_cosine_: float | None = None
        #: Parameters of the float model (quantization packs them; their count is unchanged).
        self.n_params: int | None = n_params
        self._forward = forward
        self.name = f"{base_fingerprint.name.rsplit('/', 1)[-1]}+{scheme}"

    def _fingerprint(self) -> Fingerprint:
        base = self.base_fingerprint
        opts = json.dumps(self.options, sort_keys=True)
        raw = f"{base.weights_hash}|{self.scheme}|{opts}".encode()
        return Fingerprint(
            name=f"{base.name}+{self.scheme}", version=base.version, dim=base.dim,
            weights_hash=hashlib.sha256(raw).hexdigest(), kind="quantized",
            params=tuple(sorted({
                "backend": self.backend, "base_digest": base.digest, "base_kind": base.kind,
                "base_name": base.name, "options": opts, "scheme": self.scheme,
            }.items())),
        )

    def _embed_padded(self, input_ids: NDArray[np.int64], attention_mask: NDArray[np.int64]
                      ) -> NDArray[np.float32]:
        return _normalise(self._forward(input_ids, attention_mask))

    @property
    def nbytes(self) -> int | None:
        """Bytes of the quantized model as saved: the ONNX file, or the torch state dict.

        The torch state dict is measured by ``torch.save`` into memory (packed int8 weights
        included); ``None`` where the quantized tensors cannot be serialised.
        """
        if self.onnx_path is not None:
            return int(self.onnx_path.stat().st_size)
        if self.module is None:
            return None
        import io

        import torch

        buf = io.BytesIO()
        try:
            torch.save(self.module.state_dict(), buf)
        except Exception:  # noqa: BLE001 - a tensor subclass without serialisation
            return None
        return buf.tell()

    def layers(self) -> pl.DataFrame:
        """What each linear layer became: ``name: str, module: str, weight: str``.

        For ``"onnx-int8"`` ``module`` is the ONNX operator that runs the layer
        (``QAttention`` or ``MatMulInteger`` when quantized, ``Attention`` or ``MatMul`` when
        left in float: the query, key and value of a layer are one packed node) and ``weight``
        is ``"int8"`` or ``"float32"``.
        """
        rows: list[tuple[str, str, str]] = []
        if self.module is not None:
            for name, mod in self.module.named_modules():
                w = getattr(mod, "weight", None)
                kind = type(mod).__name__
                if "Linear" in kind:
                    wt = type(w() if callable(w) else w).__name__
                    rows.append((name, f"{type(mod).__module__}.{kind}", wt))
        elif self.onnx_path is not None:
            import onnx

            graph = onnx.load(str(self.onnx_path), load_external_data=False).graph
            ops = {n.name.removesuffix("_quant"): n.op_type for n in graph.node}
            n_layers = sum(op.endswith("Attention") for op in ops.values())
            for node, modules in _onnx_node_modules(n_layers).items():
                op = ops[node]
                weight = "int8" if op in ("QAttention", "MatMulInteger") else "float32"
                rows.extend((m, op, weight) for m in modules)
        return pl.DataFrame(rows, schema={"name": pl.String, "module": pl.String,
                                          "weight": pl.String}, orient="row")


def quantize_model(
    embedder: Embedder, scheme: str = "int8-dynamic", calibration: Sequence[str] | None = None,
    *, exclude: Sequence[str] | None = None, per_channel: bool | None = None,
    group_size: int | None = None,
) -> QuantizedEmbedder:
    """Make a quantized copy of a torch embedder; the original is left unchanged.

    Parameters
    ----------
    embedder : MiniLM
        The float model (a :class:`workbench.embed.MiniLM`).
    scheme : {"bf16", "int8-dynamic", "int8-weight", "int4-weight", "onnx-int8"}
        - ``"bf16"``: the whole transformer in bfloat16.
        - ``"int8-dynamic"``: torch dynamic quantization: int8 weights, activations quantized
          per batch (fbgemm/x86 kernels).
        - ``"int8-weight"``: torchao int8 weight-only (per row), float activations.
        - ``"int4-weight"``: torchao int4 weight-only, groupwise, for CPU (Int4OpaqueTensor);
          the rest of the model runs in bfloat16.
        - ``"onnx-int8"``: the transformer as an ONNX graph of ONNX Runtime's fused BERT
          operators, then ONNX Runtime dynamic int8 of every Linear layer (``QAttention`` for
          the packed query/key/value, ``MatMulInteger`` for the rest). The files are cached
          under ``default_cache_dir() / "onnx"``, keyed by the base fingerprint.
    calibration : sequence of str, optional
        Texts to check the result on: their mean cosine between base and quantized vectors is
        stored in ``calibration_cosine_``. The dynamic schemes need no calibration data.
    exclude : sequence of str, optional
        Layers to leave in float, as patterns over module names of the transformer (``*``
        matches within one dotted part, ``**`` across parts), e.g.
        ``["encoder.layer.*.output.dense"]`` (the FFN output projections, not
        ``attention.output.dense``) or ``["encoder.layer.5.**"]``. Each pattern must match
        at least one layer.
    per_channel : bool, optional
        One weight scale per output channel (default ``True``) instead of one per tensor;
        ``"int8-dynamic"`` and ``"onnx-int8"`` only.
    group_size : int, optional
        Weights per int4 scale (default 32; 32, 64 or 128); ``"int4-weight"`` only.

    Returns
    -------
    QuantizedEmbedder
        Fingerprint name ``"<base name>+<scheme>"``, kind ``"quantized"``, a weights hash
        derived from the base weights hash, the scheme and the options.

    Raises
    ------
    InvalidInputError
        An unknown scheme, an embedder that is not a torch model, an option the scheme does
        not take, or an `exclude` pattern that matches no layer.
    UnsupportedSchemeError
        The scheme's package or kernel is missing here (a :class:`MissingDependencyError`).

    Examples
    --------
    >>> from workbench.embed import MiniLM
    >>> q = quantize_model(MiniLM(), "onnx-int8")  # doctest: +SKIP
    >>> q.fingerprint.name  # doctest: +SKIP
    'sentence-transformers/all-MiniLM-L6-v2+onnx-int8'
    """
    if scheme not in SCHEMES:
        raise InvalidInputError(f"scheme: expected one of {list(SCHEMES)}, got {scheme!r}")
    st = _sentence_transformer(embedder)
    options = _options(scheme, exclude=exclude, per_channel=per_channel, group_size=group_size)
    _check_support(scheme)
    base_fp = embedder.fingerprint
    # batched as the base model is (same texts per call, same token budget)
    kw = {"batch_size": getattr(embedder, "batch_size", 64),
          "cache": getattr(embedder, "cache", True),
          "max_batch_tokens": getattr(embedder, "max_batch_tokens", None),
          "tokens": embedder.tokens(),  # the base model's: the same tokenizer and window
          "n_params": int(sum(p.numel() for p in st[0].auto_model.parameters()))}
    if scheme == "onnx-int8":
        path = _onnx_int8(base_fp, options)
        out = QuantizedEmbedder(base_fingerprint=base_fp, scheme=scheme, options=options,
                                forward=_onnx_forward(path), backend=_backend_version(scheme),
                                onnx_path=path, **kw)
    else:
        qst = _torch_quantized(st, scheme, options)
        out = QuantizedEmbedder(base_fingerprint=base_fp, scheme=scheme, options=options,
                                forward=_torch_forward(qst), backend=_backend_version(scheme),
                                module=qst[0].auto_model, **kw)
    if calibration is not None:
        texts = check_texts(calibration)
        ref = _normalise(st.encode(texts, convert_to_numpy=True, show_progress_bar=False))
        got = out._embed_batch(texts)
        out.calibration_cosine_ = float(np.mean(np.sum(ref * got, axis=1)))
    return out


def rebuild_quantized(fp: Fingerprint, **kwargs: Any) -> QuantizedEmbedder:
    """Make the quantized embedder that `fp` describes again (base model: MiniLM).

    Parameters
    ----------
    fp : Fingerprint
        A fingerprint of kind ``"quantized"``, as recorded in a store manifest.
    **kwargs
        Passed to :class:`workbench.embed.MiniLM` (``device``, ``batch_size``, ``cache``).

    Raises
    ------
    InvalidInputError
        `fp` is not a quantized fingerprint or its base is not MiniLM.
    ModelMismatchError
        The installed MiniLM weights are not the ones `fp` was made from.
    """
    from ..embed.minilm import MiniLM

    params = dict(fp.params)
    if fp.kind != "quantized" or "scheme" not in params:
        raise InvalidInputError(f"fp: expected a fingerprint of kind 'quantized', got {fp.kind!r}")
    if params.get("base_kind") != "minilm":
        raise InvalidInputError(
            f"fp: only quantized MiniLM models can be rebuilt, base is {params.get('base_kind')!r}"
        )
    base = MiniLM(**kwargs)
    if base.fingerprint.digest != params.get("base_digest"):
        raise ModelMismatchError(
            f"fp: made from {params.get('base_name')} with digest {params.get('base_digest')}, "
            f"but the installed model is {base.fingerprint.describe()}"
        )
    options = json.loads(str(params["options"]))
    out = quantize_model(base, str(params["scheme"]), **options)
    if not out.fingerprint.same_model(fp):
        raise ModelMismatchError(
            f"fp: rebuilding gave {out.fingerprint.describe()}, expected {fp.describe()}"
        )
    return out


def quantization_support() -> pl.DataFrame:
    """Try each scheme (and the backends that were tried and dropped) on a tiny input here.

    Returns
    -------
    polars.DataFrame
        ``scheme: str, backend: str, runs: bool, reason: str`` (empty when it runs).
    """
    rows: list[tuple[str, str, bool, str]] = []
    try:
        from ..embed.minilm import MiniLM

        base: Embedder | None = MiniLM(cache=False)
        _sentence_transformer(base)
    except Exception as exc:  # noqa: BLE001 - the table reports any failure
        base = None
        missing = f"{type(exc).__name__}: {exc}"
    texts = ["a cat sits on the mat", "quantized models trade accuracy for speed"]
    for scheme in SCHEMES:
        if base is None:
            rows.append((scheme, _BACKENDS[scheme], False, missing))
            continue
        try:
            vecs = quantize_model(base, scheme).embed(texts, progress=False)
            ok = vecs.shape == (2, base.dim) and bool(np.all(np.isfinite(vecs)))
            rows.append((scheme, _BACKENDS[scheme], ok, "" if ok else "non-finite output"))
        except Exception as exc:  # noqa: BLE001
            rows.append((scheme, _BACKENDS[scheme], False, f"{type(exc).__name__}: {exc}"))
    for scheme, backend, probe in _ALTERNATIVES:
        try:
            probe()
            rows.append((scheme, backend, True, ""))
        except Exception as exc:  # noqa: BLE001
            rows.append((scheme, backend, False, f"{type(exc).__name__}: {exc}"[:300]))
    return pl.DataFrame(rows, schema={"scheme": pl.String, "backend": pl.String,
                                      "runs": pl.Boolean, "reason": pl.String}, orient="row")


# --- validation ------------------------------------------------------------------------------


def _sentence_transformer(embedder: Any) -> Any:
    from ..embed.minilm import MiniLM

    if isinstance(embedder, QuantizedEmbedder):
        raise InvalidInputError(
            f"embedder: expected a float model, got the already quantized {embedder!r}"
        )
    if not isinstance(embedder, MiniLM):
        raise InvalidInputError(
            "embedder: expected a torch model embedder (workbench.embed.MiniLM), got "
            f"{type(embedder).__name__}"
        )
    return embedder.load()


def _options(
    scheme: str, *, exclude: Sequence[str] | None, per_channel: bool | None,
    group_size: int | None,
) -> dict[str, Any]:
    opts = dict(_DEFAULTS[scheme])
    given = {"exclude": exclude, "per_channel": per_channel, "group_size": group_size}
    for key, value in given.items():
        if value is None or (key == "exclude" and len(value) == 0):
            continue
        if key not in opts:
            raise InvalidInputError(
                f"{key}: scheme {scheme!r} takes no {key!r} (it takes {sorted(opts) or 'none'})"
            )
        opts[key] = value
    if isinstance(opts.get("exclude"), str):
        raise InvalidInputError("exclude: expected a sequence of patterns, got one string")
    if "exclude" in opts:
        opts["exclude"] = sorted({str(p) for p in opts["exclude"]})
    if "per_channel" in opts:
        opts["per_channel"] = bool(opts["per_channel"])
    if "group_size" in opts and opts["group_size"] not in (32, 64, 128):
        raise InvalidInputError(f"group_size: expected 32, 64 or 128, got {opts['group_size']!r}")
    return opts


def _check_support(scheme: str) -> None:
    import torch

    if scheme == "int8-dynamic":
        engines = torch.backends.quantized.supported_engines
        if not hasattr(torch.ao.quantization, "quantize_dynamic") or not (
            {"x86", "fbgemm", "qnnpack"} & set(engines)
        ):
            raise UnsupportedSchemeError(
                f"scheme 'int8-dynamic' needs torch.ao.quantization.quantize_dynamic and a "
                f"quantized engine (x86/fbgemm/qnnpack); this torch {torch.__version__} has "
                f"engines {engines}"
            )
    elif scheme in ("int8-weight", "int4-weight"):
        try:
            import torchao  # noqa: F401
        except ImportError as exc:
            raise UnsupportedSchemeError(
                f"scheme {scheme!r} needs torchao: pip install torchao"
            ) from exc
        if scheme == "int4-weight" and not hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu"):
            raise UnsupportedSchemeError(
                "scheme 'int4-weight' needs torch's CPU int4 kernel "
                f"(aten._weight_int4pack_mm_for_cpu), absent from torch {torch.__version__}"
            )
    elif scheme == "onnx-int8":
        import importlib.util

        # Looked up, not imported: importing onnxruntime after usearch is what breaks it
        # (below).
        for mod in ("onnx", "onnxruntime"):
            if importlib.util.find_spec(mod) is None:
                raise UnsupportedSchemeError(
                    f"scheme 'onnx-int8' needs {mod}: pip install onnx onnxruntime"
                )
        if not _onnxruntime_loaded_before_usearch():
            raise UnsupportedSchemeError(
                "scheme 'onnx-int8' needs onnxruntime imported before workbench: usearch's "
                "compiled module, loaded first, breaks onnxruntime's C++ type handling (it "
                "rejects valid models, and onnxruntime >= 1.23 segfaults on import). Start "
                "with `import onnxruntime` (then `import workbench`)"
            )


def _onnxruntime_loaded_before_usearch() -> bool:
    """Whether onnxruntime's extension was imported before usearch's.

    ``sys.modules`` keeps import order; importing onnxruntime after usearch gives a broken
    runtime.
    """
    import sys

    order = list(sys.modules)
    ort = "onnxruntime.capi.onnxruntime_pybind11_state"
    if "usearch.compiled" not in sys.modules:
        return True
    return ort in sys.modules and order.index(ort) < order.index("usearch.compiled")


def _backend_version(scheme: str) -> str:
    import torch

    if scheme in ("int8-weight", "int4-weight"):
        import torchao

        return f"torchao {torchao.__version__}"
    if scheme == "onnx-int8":
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}, {_ONNX_GRAPH}"
    return f"torch {torch.__version__}"


def _normalise(vecs: Any) -> NDArray[np.float32]:
    v = np.asarray(vecs, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, np.float32(1e-12))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the deprecation and progress noise of the quantization backends.

    torch.ao.quantization warns that it is deprecated and that quantized tensors are; the
    exporters warn about tracing; onnxruntime logs "consider pre-processing" on the root logger.
    None of it is actionable for a caller of this module.
    """
    previous = logging.root.manager.disable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)


# --- torch schemes -----------------------------------------------------------------------------


def _linear_names(module: Any) -> list[str]:
    import torch

    return [n for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)]


def _pattern(pat: str) -> re.Pattern[str]:
    """``*`` matches within one dotted part, ``**`` across parts, ``?`` one character."""
    out = ""
    for tok in re.split(r"(\*\*|\*|\?)", pat):
        out += {"**": ".*", "*": "[^.]*", "?": "[^.]"}.get(tok, re.escape(tok))
    return re.compile(out)


def _selected(names: list[str], exclude: list[str]) -> list[str]:
    pats = [_pattern(p) for p in exclude]
    for pat, rx in zip(exclude, pats, strict=True):
        if not any(rx.fullmatch(n) for n in names):
            raise InvalidInputError(
                f"exclude: pattern {pat!r} matches no layer; layers look like {names[:3]}"
            )
    return [n for n in names if not any(rx.fullmatch(n) for rx in pats)]


def _torch_quantized(st: Any, scheme: str, options: dict[str, Any]) -> Any:
    import torch

    qst = copy.deepcopy(st)
    model = qst[0].auto_model.eval()
    if scheme == "bf16":
        model.to(torch.bfloat16)
        return qst
    chosen = _selected(_linear_names(model), options["exclude"])
    if not chosen:
        raise InvalidInputError("exclude: every linear layer is excluded, nothing to quantize")
    with _quiet():
        if scheme == "int8-dynamic":
            from torch.ao.quantization import (
                default_dynamic_qconfig,
                per_channel_dynamic_qconfig,
                quantize_dynamic,
            )

            qconfig = per_channel_dynamic_qconfig if options["per_channel"] else (
                default_dynamic_qconfig)
            # In place on the copy the SentenceTransformer calls: quantizing a detached copy
            # of the transformer would leave the model that runs in float.
            quantize_dynamic(model, dict.fromkeys(chosen, qconfig), inplace=True)
        else:
            from torchao.quantization import Int8WeightOnlyConfig, quantize_

            if scheme == "int8-weight":
                config: Any = Int8WeightOnlyConfig(set_inductor_config=False)
            else:
                from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig

                # Int4OpaqueTensor's CPU kernel is fast for bf16 activations only (9x slower
                # in float32 here), so the whole model runs in bf16.
                model.to(torch.bfloat16)
                config = PrototypeInt4WeightOnlyConfig(
                    group_size=options["group_size"], set_inductor_config=False)
            wanted = set(chosen)
            quantize_(model, config, filter_fn=lambda m, fqn: fqn in wanted)
    _verify_torch(model, chosen, scheme)
    return qst


def _verify_torch(model: Any, chosen: list[str], scheme: str) -> None:
    import torch

    mods = dict(model.named_modules())
    still_float = []
    for name in chosen:
        mod = mods[name]
        if scheme == "int8-dynamic":
            if type(mod) is torch.nn.Linear:
                still_float.append(name)
        elif type(mod.weight).__name__ in ("Parameter", "Tensor"):
            still_float.append(name)
    if still_float:
        raise InvalidInputError(
            f"scheme {scheme!r}: {len(still_float)} layers were not quantized, e.g. "
            f"{still_float[:3]} (shape not supported by the kernel?)"
        )


def _torch_forward(qst: Any) -> Callable[[NDArray[np.int64], NDArray[np.int64]], Any]:
    def forward(input_ids: NDArray[np.int64], attention_mask: NDArray[np.int64]) -> Any:
        with _quiet():
            return sentence_vectors(qst, input_ids, attention_mask)

    return forward


# --- ONNX Runtime ------------------------------------------------------------------------------

#: Version of the graph :func:`_build_fused_bert` writes: part of the cache file names and of the
#: fingerprint (``backend``), since another graph gives (slightly) other vectors.
_ONNX_GRAPH = "fused-bert-v1"
_ATTENTION_PARTS = ("query", "key", "value")


def _onnx_node_modules(n_layers: int) -> dict[str, list[str]]:
    """The matrix-product nodes of the fused graph and the Linear modules each one runs.

    One ``Attention`` node per layer does the query, key and value projections (one packed
    weight) and the attention itself; the other three Linear layers are ``MatMul`` nodes.
    Node names are module paths, so ``exclude`` patterns name the same layers for every scheme.
    """
    out: dict[str, list[str]] = {}
    for i in range(n_layers):
        p = f"encoder.layer.{i}"
        out[f"{p}.attention.self"] = [f"{p}.attention.self.{t}" for t in _ATTENTION_PARTS]
        for name in (f"{p}.attention.output.dense", f"{p}.intermediate.dense",
                     f"{p}.output.dense"):
            out[name] = [name]
    return out


def _build_fused_bert(model: Any, path: Path) -> None:
    """Write a BERT encoder as an ONNX graph of ONNX Runtime's fused transformer operators.

    ``EmbedLayerNormalization`` (word + position + token-type lookups and LayerNorm, which
    also turns the attention mask into sequence lengths), then per layer ``Attention`` (packed
    QKV projection, scaled dot-product attention, softmax over the unpadded keys),
    ``MatMul`` + ``SkipLayerNormalization`` (bias, residual and LayerNorm in one),
    ``MatMul`` + ``BiasGelu`` and ``MatMul`` + ``SkipLayerNormalization``. Output: the last
    hidden state, as the model's own forward gives it (the fp32 graph matches torch to float
    rounding).

    Why not an exporter: torch.onnx (dynamo or TorchScript) writes this transformers release's
    attention and mask code as some 60 small nodes that ONNX Runtime's BERT optimizer no
    longer recognises (``optimize_model(model_type="bert")`` fused 0 Attention nodes), so
    softmax and the mask add ran unfused over score tensors of batch x 12 x seq x seq floats:
    half of the int8 model's time on paragraphs. This graph is built from the weights with the
    operators that optimizer would have produced; `quantize_dynamic` then makes the Attention
    nodes ``QAttention`` and the MatMuls ``MatMulInteger``.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    cfg = model.config
    wanted = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute"}
    for key, value in wanted.items():
        if getattr(cfg, key, value) != value:
            raise UnsupportedSchemeError(
                f"scheme 'onnx-int8' builds BERT encoders ({key}={value!r}); this model has "
                f"{key}={getattr(cfg, key)!r}"
            )
    sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    eps, ms = float(cfg.layer_norm_eps), "com.microsoft"
    inits: list[Any] = []
    nodes: list[Any] = []

    def w(name: str, arr: NDArray[np.float32]) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))
        return name

    def node(op: str, ins: list[str], out: str, name: str, **attrs: Any) -> None:
        domain = "" if op in ("Cast", "MatMul") else ms
        nodes.append(helper.make_node(op, ins, [out], name=name, domain=domain, **attrs))

    names = ["input_ids", "attention_mask", "token_type_ids"]
    for n in names:  # int64 in, as tokenizers give them; the fused operators take int32
        node("Cast", [n], f"{n}.i32", f"cast.{n}", to=TensorProto.INT32)
    e = "embeddings"
    nodes.append(helper.make_node(
        "EmbedLayerNormalization",
        ["input_ids.i32", "token_type_ids.i32", w(f"{e}.word", sd[f"{e}.word_embeddings.weight"]),
         w(f"{e}.position", sd[f"{e}.position_embeddings.weight"]),
         w(f"{e}.token_type", sd[f"{e}.token_type_embeddings.weight"]),
         w(f"{e}.ln.weight", sd[f"{e}.LayerNorm.weight"]),
         w(f"{e}.ln.bias", sd[f"{e}.LayerNorm.bias"]), "attention_mask.i32"],
        ["h.emb", "lengths"], name=e, domain=ms, epsilon=eps))
    x = "h.emb"
    for i in range(int(cfg.num_hidden_layers)):
        p = f"encoder.layer.{i}"
        a, o, mid, out = (f"{p}.attention.self", f"{p}.attention.output", f"{p}.intermediate",
                          f"{p}.output")
        qkv = np.concatenate([sd[f"{a}.{t}.weight"].T for t in _ATTENTION_PARTS], axis=1)
        bias = np.concatenate([sd[f"{a}.{t}.bias"] for t in _ATTENTION_PARTS])
        node("Attention", [x, w(f"{a}.qkv.weight", qkv), w(f"{a}.qkv.bias", bias), "lengths"],
             f"{a}.out", a, num_heads=int(cfg.num_attention_heads))
        src = f"{a}.out"
        # residual None: the FFN's first half (bias + GELU); else bias + residual + LayerNorm
        for dense, residual in ((o, x), (mid, None), (out, f"{o}.out")):
            node("MatMul", [src, w(f"{dense}.dense.weight", sd[f"{dense}.dense.weight"].T)],
                 f"{dense}.mm", f"{dense}.dense")
            b = w(f"{dense}.dense.bias", sd[f"{dense}.dense.bias"])
            if residual is None:
                node("BiasGelu", [f"{dense}.mm", b], f"{dense}.out", f"{dense}.gelu")
            else:
                node("SkipLayerNormalization",
                     [f"{dense}.mm", residual,
                      w(f"{dense}.ln.weight", sd[f"{dense}.LayerNorm.weight"]),
                      w(f"{dense}.ln.bias", sd[f"{dense}.LayerNorm.bias"]), b],
                     f"{dense}.out", f"{dense}.LayerNorm", epsilon=eps)
            src = f"{dense}.out"
        x = src
    nodes[-1].output[0] = "hidden"
    dims = ["batch", "seq"]
    graph = helper.make_graph(
        nodes, "bert", [helper.make_tensor_value_info(n, TensorProto.INT64, dims) for n in names],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [*dims, cfg.hidden_size])],
        inits)
    # IR 8 / opset 17: what onnxruntime 1.20-1.22 load (onnx 1.23 would write IR 11+)
    proto = helper.make_model(graph, ir_version=8, opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)])
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: onnx.save(proto, str(tmp)))


def _onnx_int8(base_fp: Fingerprint, options: dict[str, Any]) -> Path:
    """Build and quantize the graph in a fresh interpreter; both files are cached per base model.

    The child imports torch, onnx and onnxruntime before workbench: usearch's compiled module,
    once loaded, breaks the C++ string formatting of libraries loaded after it (onnx's shape
    inference, which the quantizer runs, then writes a model ONNX Runtime rejects;
    onnxruntime >= 1.23 segfaults on import). ``import workbench`` loads usearch, so in this
    process it is always first.
    """
    import subprocess
    import sys

    import onnxruntime

    folder = default_cache_dir() / "onnx" / base_fp.digest
    src = folder / f"fp32-{_ONNX_GRAPH}.onnx"
    key = hashlib.sha256(json.dumps([options, onnxruntime.__version__], sort_keys=True)
                         .encode()).hexdigest()[:16]
    path = src.with_name(f"{src.stem}-int8-{key}.onnx")
    if path.exists():
        return path
    code = ("import sys, torch, onnx, onnxruntime; "
            "from workbench.compress.quantize import _build_onnx; "
            "_build_onnx(sys.argv[1], sys.argv[2], sys.argv[3])")
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(src), str(path), json.dumps(options)],
            capture_output=True, text=True, timeout=900, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise UnsupportedSchemeError("scheme 'onnx-int8': building the graph took over 900 s"
                                     ) from exc
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    if done.returncode == 3:
        raise InvalidInputError(last.removeprefix("InvalidInputError: "))
    if done.returncode != 0 or not path.exists():
        raise UnsupportedSchemeError(
            f"scheme 'onnx-int8': building or quantizing the ONNX graph failed (exit "
            f"{done.returncode}): {done.stderr.strip()[-800:]}"
        )
    return path


def _build_onnx(fp32_path: str, int8_path: str, options_json: str) -> None:
    """Child process of :func:`_onnx_int8`: build MiniLM's fused graph if needed, quantize it."""
    import sys

    from ..embed.minilm import MiniLM

    src, path = Path(fp32_path), Path(int8_path)
    model = MiniLM(cache=False).load()[0].auto_model
    if not src.exists():
        _build_fused_bert(model.eval(), src)
    try:
        _quantize_onnx(src, path, json.loads(options_json), int(model.config.num_hidden_layers))
    except InvalidInputError as exc:
        print(f"InvalidInputError: {exc}", file=sys.stderr)
        raise SystemExit(3) from None


def _quantize_onnx(src: Path, path: Path, options: dict[str, Any], n_layers: int) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = _onnx_node_modules(n_layers)
    keep = set(_selected(sorted(m for ms in nodes.values() for m in ms), options["exclude"]))
    # a node stays float if any module it runs is excluded (the packed QKV is one weight)
    floats = [n for n, ms in nodes.items() if not set(ms) <= keep]
    if len(floats) == len(nodes):
        raise InvalidInputError("exclude: every linear layer is excluded, nothing to quantize")
    with _quiet():
        # DefaultTensorType: the contrib operators' outputs have no inferred type
        write_atomic(path, lambda tmp: quantize_dynamic(
            src, tmp, per_channel=options["per_channel"], weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Attention"], nodes_to_exclude=floats,
            extra_options={"DefaultTensorType": TensorProto.FLOAT}))


def _onnx_forward(path: Path) -> Callable[[NDArray[np.int64], NDArray[np.int64]], Any]:
    import onnxruntime as ort
    import torch

    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def forward(input_ids: NDArray[np.int64], attention_mask: NDArray[np.int64]) -> Any:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask,
                 "token_type_ids": np.zeros_like(input_ids)}
        hidden = sess.run(None, feeds)[0]
        mask = attention_mask[..., None].astype(np.float32)
        # Mean pooling over real tokens, as the model's sentence-transformers Pooling does.
        return (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)

    return forward


# --- alternatives tried and dropped, for quantization_support() -----------------------------


def _tiny_linear_probe(make_config: Callable[[], Any], dtype: str = "float32") -> None:
    import torch
    from torchao.quantization import quantize_

    lin = torch.nn.Sequential(torch.nn.Linear(128, 64)).to(getattr(torch, dtype))
    with _quiet():
        quantize_(lin, make_config())
        lin(torch.randn(4, 128, dtype=getattr(torch, dtype)))


def _probe_ao_int4_plain() -> None:
    from torchao.quantization import Int4WeightOnlyConfig

    _tiny_linear_probe(lambda: Int4WeightOnlyConfig(group_size=32, set_inductor_config=False),
                       "bfloat16")


def _probe_ao_int4_tile() -> None:
    from torchao.quantization import Int4WeightOnlyConfig

    _tiny_linear_probe(lambda: Int4WeightOnlyConfig(
        group_size=32, int4_packing_format="tile_packed_to_4d", set_inductor_config=False),
        "bfloat16")


def _probe_ao_da8w8() -> None:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig

    _tiny_linear_probe(lambda: Int8DynamicActivationInt8WeightConfig(set_inductor_config=False))


def _probe_ao_da8w4() -> None:
    from torchao.prototype.quantization.int4 import Int8DynamicActivationInt4WeightConfig

    _tiny_linear_probe(lambda: Int8DynamicActivationInt4WeightConfig(
        group_size=32, set_inductor_config=False))


_ALTERNATIVES: list[tuple[str, str, Callable[[], None]]] = [
    ("int4-weight", "torchao Int4WeightOnlyConfig (plain packing)", _probe_ao_int4_plain),
    ("int4-weight", "torchao Int4WeightOnlyConfig (tile_packed_to_4d)", _probe_ao_int4_tile),
    ("int8-dynamic", "torchao Int8DynamicActivationInt8WeightConfig", _probe_ao_da8w8),
    ("int8-dynamic", "torchao Int8DynamicActivationInt4WeightConfig (da8w4 CPU)",
     _probe_ao_da8w4),
]
