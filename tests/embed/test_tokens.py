"""Token ids tokenized once with the Rust tokenizer, and their padding."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.embed.tokens import TokenIds, pad_ids


def test_pad_ids_right_pads_with_a_mask() -> None:
    ids, mask = pad_ids([[5, 6, 7], [8], []], pad_id=0)
    assert ids.dtype == mask.dtype == np.int64
    np.testing.assert_array_equal(ids, [[5, 6, 7], [8, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    ids, mask = pad_ids([[1, 2]], pad_id=9)
    assert ids.tolist() == [[1, 2]] and mask.tolist() == [[1, 1]]
    ids, mask = pad_ids([[3], [4, 5]], pad_id=9)
    assert ids.tolist() == [[3, 9], [4, 5]]
    assert pad_ids([])[0].shape == (0, 0)


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    transformers = pytest.importorskip("transformers")
    from workbench.embed.minilm import model_path

    try:
        path = model_path()
    except Exception as exc:  # noqa: BLE001 - the bundled model is an optional package
        pytest.skip(f"bundled MiniLM missing: {exc}")
    return transformers.AutoTokenizer.from_pretrained(str(path))


TEXTS = ["A cat sits on the mat.", "", "naïve café ✓ 😀 unknownwordzzz", "word " * 300,
         "Open the file with a context manager so it is closed."]


def test_token_ids_match_the_transformers_tokenizer(tokenizer) -> None:  # type: ignore[no-untyped-def]
    for max_length in (256, 16):
        got = TokenIds(tokenizer, max_length)(TEXTS)
        want = tokenizer(TEXTS, truncation=True, max_length=max_length)["input_ids"]
        assert got == [list(x) for x in want]
        assert max(map(len, got)) == max_length
        bare = TokenIds(tokenizer, max_length, special_tokens=False)(TEXTS)
        # without [CLS]/[SEP], the same words the model reads
        assert bare == [row[1:-1] for row in got]
    ids = TokenIds(tokenizer, 8)
    was, tokenizer.model_max_length = tokenizer.model_max_length, 4
    try:  # the private copy keeps its own settings
        assert len(ids(["word " * 50])[0]) == 8
    finally:
        tokenizer.model_max_length = was
    assert ids([]) == []
    padded, mask = ids.pad(ids(TEXTS[:2]))
    assert padded.shape == mask.shape == (2, 8) and mask[1].sum() == 2  # "" -> [CLS] [SEP]
    assert (padded[mask == 0] == tokenizer.pad_token_id).all()
