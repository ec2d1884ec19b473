"""The ShapesWorld oracle: a small CNN that names a picture's shape and style.

It plays the part CLIP and DINO play in the paper's evaluation. Two heads over one trunk: the
content head classifies the shape, the style head the style, each over all classes (held-out
ones included). Each head's penultimate features are its embedding, so a generated image can be
scored both as the target class's probability and as the cosine similarity to a reference image
(content embedding for content fidelity, style embedding for style fidelity: the CLIP-I
analogue). Weights are shipped as `resources/demo/oracle.safetensors` with the class lists and
the measured accuracy in the file's metadata; nothing is unpickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from craftstudio.domain.resources import demo_dir

ORACLE_FILE = "oracle.safetensors"
FORMAT = "craftstudio.shapesworld-oracle.v1"


def oracle_path() -> Path:
    return demo_dir() / ORACLE_FILE


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class OracleNet(nn.Module):
    """Conv trunk 64→4 pixels, global average and max pools, then a content and a style branch.

    A 1×1 convolution on the 16×16 stage predicts the object's mask: a training-only signal that
    teaches the trunk to separate object from background whatever the style (shape accuracy
    rises several times faster with it)."""

    def __init__(self, content_classes: int, style_classes: int, widths: tuple[int, ...] = (16, 32, 64, 128),
                 embed: int = 96) -> None:
        super().__init__()
        self.widths, self.embed_dim = tuple(widths), embed
        stages: list[nn.Module] = []
        cin = 3
        for width in widths:
            stages.append(nn.Sequential(_block(cin, width, 2), _block(width, width, 1)))
            cin = width
        self.stages = nn.ModuleList(stages)
        self.mask_head = nn.Conv2d(widths[1], 1, 1)
        self.content_embed = nn.Sequential(nn.Linear(2 * cin, embed), nn.ReLU(inplace=True))
        self.style_embed = nn.Sequential(nn.Linear(2 * cin, embed), nn.ReLU(inplace=True))
        self.content_head = nn.Linear(embed, content_classes)
        self.style_head = nn.Linear(embed, style_classes)

    def _trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask_features = None
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i == 1:
                mask_features = x
        pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        return pooled, mask_features

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, _ = self._trunk(x)
        return self.content_embed(pooled), self.style_embed(pooled)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Content logits, style logits and object-mask logits (N, 1, 16, 16)."""
        pooled, mask_features = self._trunk(x)
        content, style = self.content_embed(pooled), self.style_embed(pooled)
        return self.content_head(content), self.style_head(style), self.mask_head(mask_features)


def to_input(images: Any) -> torch.Tensor:
    """PIL images, a uint8 array (N, 64, 64, 3) or a tensor (N, 3, 64, 64), uint8 or float in
    [0, 1] → the network's input: float (N, 3, 64, 64) in [-1, 1]."""
    if isinstance(images, torch.Tensor):
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    else:
        if not isinstance(images, np.ndarray):
            images = np.stack([np.asarray(im.convert("RGB").resize((64, 64)), dtype=np.uint8) for im in images])
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    return x * 2.0 - 1.0


@dataclass
class Classification:
    content_probs: torch.Tensor  # (N, shapes)
    style_probs: torch.Tensor  # (N, styles)
    content_embedding: torch.Tensor  # (N, D), unit length
    style_embedding: torch.Tensor


class Oracle:
    """A trained `OracleNet` with its class names; `classify` takes PIL images or arrays."""

    def __init__(self, net: OracleNet, shapes: tuple[str, ...], styles: tuple[str, ...],
                 metadata: dict[str, Any] | None = None) -> None:
        self.net = net.eval()
        self.shapes, self.styles = tuple(shapes), tuple(styles)
        self.metadata = metadata or {}

    @classmethod
    def load(cls, path: str | Path | None = None) -> Oracle:
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(path) if path else oracle_path()
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: train it with `python -m craftstudio.demo train-oracle`.")
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a ShapesWorld oracle (format {meta.get('format')!r}).")
        shapes, styles = tuple(json.loads(meta["shapes"])), tuple(json.loads(meta["styles"]))
        arch = json.loads(meta["architecture"])
        net = OracleNet(len(shapes), len(styles), tuple(arch["widths"]), arch["embed"])
        state = {k: v.float() for k, v in load_file(str(path)).items()}
        net.load_state_dict(state)
        extra = {k: json.loads(v) for k, v in meta.items() if k not in ("format", "shapes", "styles")}
        return cls(net, shapes, styles, extra)

    def save(self, path: str | Path, extra: dict[str, Any]) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "shapes": json.dumps(self.shapes), "styles": json.dumps(self.styles),
                "architecture": json.dumps({"widths": list(self.net.widths), "embed": self.net.embed_dim}),
                **{k: json.dumps(v) for k, v in extra.items()}}
        state = {k: v.detach().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous()
                 for k, v in self.net.state_dict().items()}
        tmp = path.with_name(path.name + ".tmp")
        save_file(state, str(tmp), metadata=meta)
        tmp.replace(path)
        return path

    @torch.no_grad()
    def classify(self, images: Any, batch: int = 256) -> Classification:
        parts = []
        for start in range(0, len(images), batch):
            x = to_input(images[start:start + batch])
            content, style = self.net.features(x)
            parts.append((F.softmax(self.net.content_head(content), -1), F.softmax(self.net.style_head(style), -1),
                          F.normalize(content, dim=-1), F.normalize(style, dim=-1)))
        return Classification(*(torch.cat(p) for p in zip(*parts, strict=True)))

    def predict(self, images: Any) -> list[tuple[str, str]]:
        """(shape, style) names, one pair per image."""
        out = self.classify(images)
        return [(self.shapes[c], self.styles[s])
                for c, s in zip(out.content_probs.argmax(-1).tolist(), out.style_probs.argmax(-1).tolist(), strict=True)]

    def target_scores(self, out: Classification, content: str, style: str) -> dict[str, float]:
        """Of classified images: mean target-class probability and accuracy per head, and the
        fraction with both heads right."""
        ci, si = self.shapes.index(content), self.styles.index(style)
        content_ok = out.content_probs.argmax(-1) == ci
        style_ok = out.style_probs.argmax(-1) == si
        return {
            "content_prob": out.content_probs[:, ci].mean().item(),
            "style_prob": out.style_probs[:, si].mean().item(),
            "content_acc": content_ok.float().mean().item(),
            "style_acc": style_ok.float().mean().item(),
            "both_acc": (content_ok & style_ok).float().mean().item(),
        }

    def scores(self, images: Any, content: str, style: str, reference: Any | None = None) -> dict[str, float]:
        """Mean target-class probability and accuracy per head; with `reference` images (content
        reference first, style reference second) also the mean cosine similarity of the
        content/style embeddings to them."""
        out = self.classify(images)
        result = self.target_scores(out, content, style)
        if reference is not None:
            ref = self.classify(reference)
            result["content_cos"] = (out.content_embedding @ ref.content_embedding[0]).mean().item()
            result["style_cos"] = (out.style_embedding @ ref.style_embedding[-1]).mean().item()
        return result
