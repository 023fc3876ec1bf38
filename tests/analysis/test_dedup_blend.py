"""The shipped hybrid blend is what fit_blend gives on STS-B train, and it earns its place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import workbench as wb
from workbench.analysis._dedup_text import DEFAULT_BLEND, FEATURES, text_pair_features


@pytest.mark.slow
def test_default_blend_refits_from_stsb_and_beats_cosine(
        shared_data: Callable[..., Path], tmp_path: Path) -> None:
    from sklearn.metrics import average_precision_score

    from workbench.evaldata import sts_pairs

    shared_data("stsb")
    emb = wb.embed.MiniLM(cache=tmp_path / "cache")
    train = sts_pairs("stsb", "train")
    f = text_pair_features(train["a"].to_list(), train["b"].to_list(), embedder=emb)
    refit = wb.fit_blend(f, (train["score"] >= 4.5).to_numpy(), model=emb.fingerprint.name)
    np.testing.assert_allclose(refit.coef, DEFAULT_BLEND.coef, rtol=0.02, atol=0.02)
    assert refit.intercept == pytest.approx(DEFAULT_BLEND.intercept, rel=0.02)
    assert DEFAULT_BLEND.model == emb.fingerprint.name
    test = sts_pairs("stsb", "test")
    ft = text_pair_features(test["a"].to_list(), test["b"].to_list(), embedder=emb)
    y = (test["score"] >= 4.5).to_numpy()
    ap_cos = average_precision_score(y, ft["cosine"])
    ap_blend = average_precision_score(y, DEFAULT_BLEND.score(ft))
    assert ap_blend > ap_cos + 0.02, (ap_blend, ap_cos)


def test_blend_validates_and_scores_in_unit_interval() -> None:
    with pytest.raises(wb.errors.InvalidInputError, match="coef"):
        wb.DedupBlend(coef=(1.0,), intercept=0.0)
    with pytest.raises(wb.errors.InvalidInputError, match="finite"):
        wb.DedupBlend(coef=(float("nan"),) * len(FEATURES), intercept=0.0)
    feats = {name: np.array([0.0, 0.5, 1.0]) for name in FEATURES}
    s = DEFAULT_BLEND.score(feats)
    assert s.dtype == np.float32 and (np.diff(s) > 0).all() and s.min() >= 0 and s.max() <= 1
    with pytest.raises(wb.errors.InvalidInputError, match="labels"):
        wb.fit_blend(feats, [True, True, True])
    with pytest.raises(wb.errors.InvalidInputError, match="features"):
        wb.fit_blend({"cosine": np.zeros(3)}, [True, False, True])
