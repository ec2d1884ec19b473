"""The demo model's tokenizer: a CLIP BPE tokenizer written from ShapesWorld's own vocabulary.

Every byte character (alone and as a word end, `x</w>`) is in the vocabulary, so any text can be
tokenized; the world's words and the spare trigger identifiers are whole tokens, built by merges.
BPE applies merges by rank, so one word's merges can cut another word apart; `_merges_for`
simulates the tokenizer's BPE and adds merges until every word is one token. End-of-word merges
read like `st ar</w>` (a bare `</w>` token breaks the BPE model).

The spare identifiers (`sks`, `ohwx`, ...) never occur in base training: they are the trigger
words of LoRAs that teach the model new shapes or styles.
"""

from __future__ import annotations

import json
from pathlib import Path

from craftstudio.demo.world import CAPTION_WORDS, SHAPES, STYLES
from craftstudio.engine.clip_bpe import bytes_to_unicode

EXTRA_WORDS: tuple[str, ...] = (
    "an", "the", "of", "on", "and", "with", "shape", "object", "picture", "drawing", "pattern",
    "background", "colour", "color", "bright", "dark", "light", "small", "large",
)
TRIGGERS: tuple[str, ...] = (
    "sks", "ohwx", "zxq", "vrt", "qjx", "bzk", "wpf", "xyv", "kqz", "jvh", "dxl", "yfq", "gkw", "pzm",
    "hxb", "tqv",
)
WORDS: tuple[str, ...] = tuple(dict.fromkeys(CAPTION_WORDS + SHAPES + STYLES + EXTRA_WORDS + TRIGGERS))
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_LENGTH = 77
_NEVER = 1 << 30




def _symbols(word: str) -> list[str]:
    return list(word[:-1]) + [word[-1] + "</w>"]


def bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """CLIP's BPE of one word: repeatedly merge the adjacent pair with the lowest rank."""
    pieces = _symbols(word)
    while len(pieces) > 1:
        rank, pair = min((ranks.get(p, _NEVER), p) for p in zip(pieces, pieces[1:], strict=False))
        if rank == _NEVER:
            break
        merged, i, out = pair[0] + pair[1], 0, []
        while i < len(pieces):
            if i < len(pieces) - 1 and (pieces[i], pieces[i + 1]) == pair:
                out.append(merged)
                i += 2
            else:
                out.append(pieces[i])
                i += 1
        pieces = out
    return pieces


def _merges_for(words: tuple[str, ...]) -> list[tuple[str, str]]:
    """Merges (in rank order) under which every word of `words` is a single token."""
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}

    def add(pair: tuple[str, str]) -> None:
        if pair not in ranks:
            ranks[pair] = len(merges)
            merges.append(pair)

    for word in words:  # left-to-right chains first: short, readable ranks
        pieces = _symbols(word)
        while len(pieces) > 1:
            add((pieces[0], pieces[1]))
            pieces = [pieces[0] + pieces[1]] + pieces[2:]
    for _ in range(10 * len(words)):  # then repair words that other words' merges cut apart
        broken = [(w, p) for w in words if len(p := bpe(w, ranks)) > 1]
        if not broken:
            return merges
        for _word, pieces in broken:
            add((pieces[0], pieces[1]))
    raise RuntimeError("could not build BPE merges for the vocabulary")


def write_tokenizer(folder: str | Path, words: tuple[str, ...] = WORDS, max_length: int = MAX_LENGTH,
                    config: bool = True) -> Path:
    """Write vocab.json, merges.txt and (with `config`) the tokenizer config that `CLIPTokenizer`
    loads offline."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab: list[str] = []
    for ch in bytes_to_unicode().values():
        vocab += [ch, ch + "</w>"]
    merges = _merges_for(words)
    known = set(vocab)
    for a, b in merges:
        if a + b not in known:
            known.add(a + b)
            vocab.append(a + b)
    vocab += [BOS, EOS]
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False),
                                       encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n",
                                       encoding="utf-8")
    if not config:
        return folder
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": max_length, **special,
    }))
    (folder / "special_tokens_map.json").write_text(json.dumps(special))
    return folder


def vocab_size(folder: str | Path) -> int:
    return len(json.loads((Path(folder) / "vocab.json").read_text(encoding="utf-8")))
