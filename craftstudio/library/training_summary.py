"""What the metadata inside a LoRA or model file says, summarised for people.

Trainers write dozens of keys: ModelSpec (`modelspec.*`), kohya sd-scripts (`ss_*`, with the
caption tag frequencies as JSON) and CraftStudio's own `craft.*`. The Library page's details
show the few that answer "what is this and how was it made": base model, steps, resolution,
rank, learning rate, the most frequent caption tags (good trigger-phrase hints) and every
`craft.*` key. The rest stays in the catalog (`library info --json` prints all of it).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

TAG_HINTS = 8
MAX_VALUE = 160  # characters shown per value; training requests can be long JSON

# (label, keys to try in order); the first key present gives the value.
_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Title", ("modelspec.title", "ss_output_name")),
    ("Architecture", ("modelspec.architecture",)),
    ("Base model", ("ss_sd_model_name", "ss_base_model_version", "modelspec.base_model")),
    ("Author", ("modelspec.author",)),
    ("Made", ("modelspec.date",)),
    ("Resolution", ("modelspec.resolution", "ss_resolution")),
    ("Steps", ("ss_max_train_steps", "ss_steps")),
    ("Epochs", ("ss_num_epochs", "ss_epoch")),
    ("Training images", ("ss_num_train_images",)),
    ("Rank / alpha", ()),  # built from ss_network_dim / ss_network_alpha
    ("Learning rate", ("ss_learning_rate", "ss_unet_lr")),
    ("Network", ("ss_network_module",)),
    ("Usage", ("modelspec.usage_hint",)),
    ("License", ("modelspec.license",)),
    ("Trigger phrase", ("modelspec.trigger_phrase",)),
    ("Comment", ("ss_training_comment",)),
    ("Family evidence", ("family_evidence",)),
)


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def summary(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs worth showing, in a fixed order; empty values left out."""
    rows: list[tuple[str, str]] = []
    for label, keys in _FIELDS:
        if label == "Rank / alpha":
            dim, alpha = meta.get("ss_network_dim"), meta.get("ss_network_alpha")
            if dim not in (None, "", "None"):
                rows.append((label, f"{dim} / {alpha}" if alpha not in (None, "", "None") else str(dim)))
            continue
        for key in keys:
            value = meta.get(key)
            if value not in (None, "", "None"):
                rows.append((label, _text(value)))
                break
    rows.extend((key, _text(value)) for key, value in sorted(meta.items())
                if key.startswith("craft.") and value not in (None, ""))
    return rows


def tag_hints(meta: dict[str, Any], limit: int = TAG_HINTS) -> list[tuple[str, int]]:
    """The most frequent caption tags of the training set (kohya `ss_tag_frequency`), with counts."""
    raw = meta.get("ss_tag_frequency")
    if not raw:
        return []
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    counts: Counter[str] = Counter()
    if isinstance(data, dict):
        for folder in data.values():
            if isinstance(folder, dict):
                for tag, n in folder.items():
                    if isinstance(tag, str) and isinstance(n, int | float) and tag.strip():
                        counts[tag.strip()] += int(n)
    return counts.most_common(limit)
