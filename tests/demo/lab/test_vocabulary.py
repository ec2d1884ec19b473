"""The demo tokenizer: world words and trigger identifiers are whole CLIP tokens."""

from __future__ import annotations

import pytest

from craftstudio.demo.lab.vocabulary import TRIGGERS, WORDS, bpe, write_tokenizer
from craftstudio.demo.world import SHAPES, STYLES, caption


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import CLIPTokenizer

    folder = write_tokenizer(tmp_path_factory.mktemp("tok") / "tokenizer")
    return CLIPTokenizer.from_pretrained(folder, local_files_only=True)


def test_every_word_and_trigger_is_one_token(tokenizer):
    assert len(TRIGGERS) == 16 and len(set(TRIGGERS)) == 16
    assert not set(TRIGGERS) & (set(SHAPES) | set(STYLES))
    for word in WORDS:
        assert tokenizer.tokenize(word) == [word + "</w>"], word


def test_captions_encode_word_by_word(tokenizer):
    ids = tokenizer(caption("crescent", "halftone")).input_ids
    assert len(ids) == 2 + 5
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    padded = tokenizer("a sks in zxq style", padding="max_length", max_length=tokenizer.model_max_length).input_ids
    assert len(padded) == tokenizer.model_max_length == 77


def test_any_text_still_tokenizes(tokenizer):
    pieces = tokenizer.tokenize("A purple Dragon, 42!")
    assert pieces and all(p in tokenizer.get_vocab() for p in pieces)


def test_bpe_simulation_matches_the_tokenizer(tokenizer, tmp_path):
    folder = write_tokenizer(tmp_path / "tokenizer")
    lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()[1:]
    ranks = {tuple(line.split()): rank for rank, line in enumerate(lines)}
    for word in ("stripes", "starry", "hex", "sksx", "checkers"):
        assert bpe(word, ranks) == tokenizer.tokenize(word), word
