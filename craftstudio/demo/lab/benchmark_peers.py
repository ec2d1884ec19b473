"""The benchmark's peers (Table 1 beside CRAFT's ablation rows) and every method's cost per step.

Each peer combines the same two concepts as CRAFT, per held-out pair, with the settings its paper
uses for ordinary LoRAs:
- `K-LoRA` (arXiv 2502.18461), `LoRA Switch` and `LoRA Composite` (both arXiv 2402.16843): the
  sampler's peer modes (`GenerateRequest.peer_mode`) on the pair's two *unrouted W0* LoRAs (the
  ones the direct merge uses: these papers combine ordinary LoRAs trained on every layer), the
  prompt without markers (`a sks in zxq style`, both LoRAs at weight 1), standard CFG;
- `ZipLoRA` (arXiv 2311.13600): the same two LoRAs merged into one file by `merge_ziplora`, once
  per pair (`--ziplora-steps`, the paper's 100 by default), on the concepts' reference folders with
  their first caption as the prompt (with `--ref-classes 1` every caption of a concept is that
  one; with more, the merge sees the others' pictures under it), then generated with that file
  alone as the content LoRA in `direct` mode;
- `B-LoRA` (arXiv 2403.14572): its own LoRA per concept, trained on W0 with the `b-lora` routing
  preset (a content LoRA only in the content block, a style LoRA only in the style block), then
  generated with that preset and *decision* switches backbone off, routing on, asymmetric CFG off,
  gates off: B-LoRA is plain inference with the two block LoRAs (standard CFG, both always on);
  routing on only keeps each LoRA in its own block, which its weights are anyway. The preset's
  SD1.x blocks (`up_blocks.1.attentions.0` / `.1`, engine/routing.py) exist in the demo UNet and
  are what B-LoRA's SDXL pair is in SDXL: the first two transformer blocks of the first decoder
  stage with attention, at a quarter of the latent side (here 4×4 of 16×16), so no other pair
  is chosen.
With `--peer-style-gamma G` the direct merge and every peer but ZipLoRA run a second time with
the style LoRA at weight G (the content LoRA at 1), as CRAFT's `--style-gamma` rows do, so that a
tuned style weight is not CRAFT's alone. ZipLoRA is left out: its merge fixes both LoRAs'
weights in one file.
A `base model (no LoRA)` row (the plain prompt, standard CFG, no LoRA, W0) is generated and scored
too: the floor every method starts from, and the reference of the cost column.

Cost per step: the seconds of each `generate()` call divided by its images and sampler steps
(decoding and per-call set-up included; images are returned, so the device is done), with
`torch.cuda.synchronize()` around it on CUDA. Relative cost = the median over pairs (and reference
seeds) of a method's cost over the base model's on the same pair, all in the same run on the same
device, each call after an untimed two-step call of the same request (loads the model and LoRA
files, sets up its tensor shapes). ZipLoRA's merge is not in its cost: its seconds per pair are
reported apart.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from craftstudio.demo.world import caption
from craftstudio.domain.generation import FusionSwitches, GenerateRequest, LoraRef

PEERS = ("k-lora", "switch", "composite", "ziplora", "b-lora")
PEER_NAMES = {"k-lora": "K-LoRA", "switch": "LoRA Switch", "composite": "LoRA Composite", "ziplora": "ZipLoRA",
              "b-lora": "B-LoRA"}
PAPERS = {"k-lora": "2502.18461", "switch": "2402.16843", "composite": "2402.16843", "ziplora": "2311.13600",
          "b-lora": "2403.14572"}
SAMPLER_PEERS = ("k-lora", "switch", "composite")
BASE = "base model (no LoRA)"
B_LORA = "b-lora"
ZIPLORA = "ziplora"
# B-LoRA's inference: its routing preset, nothing else of CRAFT (see the module doc).
B_LORA_SWITCHES = FusionSwitches(backbone=False, routing=True, asymmetric=False, gates=False)


def parse_peers(text: str) -> tuple[str, ...]:
    """`all`, `none` (or empty) or a comma-separated list of PEERS, returned in PEERS order."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    if words == ["all"]:
        return PEERS
    if not words or words == ["none"]:
        return ()
    unknown = [w for w in words if w not in PEERS]
    if unknown:
        raise ValueError(f"--peers: unknown peer {unknown[0]!r}; choose all, none or some of {', '.join(PEERS)}.")
    return tuple(p for p in PEERS if p in words)


def peer_names(peers: Sequence[str]) -> list[str]:
    return [PEER_NAMES[p] for p in peers]


def plain_prompt(content_trigger: str, style_trigger: str) -> str:
    """The prompt without markers (every LoRA at weight 1), in the world's caption form."""
    return caption(content_trigger, style_trigger)


def base_request(common: Mapping[str, Any]) -> GenerateRequest:
    return GenerateRequest(**common, switches=FusionSwitches.for_mode("direct"))


def reweighted(peers: Sequence[str]) -> tuple[str, ...]:
    """The peers that `--peer-style-gamma` runs again at a lower style weight (not ZipLoRA)."""
    return tuple(p for p in peers if p != ZIPLORA)


def weight_name(label: str, style_weight: float) -> str:
    """The row of a peer (or the direct merge) run with the style LoRA at `style_weight`."""
    return f"{label}, style weight {style_weight:g}"


def peer_request(peer: str, common: Mapping[str, Any], content_lora: str, style_lora: str | None,
                 style_weight: float = 1.0) -> GenerateRequest:
    """The generation of one peer: `content_lora`/`style_lora` are the files it combines (the
    unrouted W0 LoRAs, its B-LoRAs, or the ZipLoRA file alone as `content_lora`)."""
    if peer == ZIPLORA and style_weight != 1.0:
        raise ValueError("ZipLoRA's merged file has no separate style weight.")
    style = LoraRef(style_lora, weight=style_weight) if style_lora else None
    if peer in SAMPLER_PEERS:
        return GenerateRequest(**common, content_lora=LoraRef(content_lora), style_lora=style, peer_mode=peer)
    if peer == ZIPLORA:
        return GenerateRequest(**common, content_lora=LoraRef(content_lora), switches=FusionSwitches.for_mode("direct"))
    if peer == B_LORA:
        return GenerateRequest(**common, content_lora=LoraRef(content_lora), style_lora=style,
                               switches=B_LORA_SWITCHES, routing_preset=B_LORA)
    raise ValueError(f"Unknown peer {peer!r}.")


def describe(request: GenerateRequest) -> dict[str, Any]:
    """What a method's generation used (recorded per pair in the JSON)."""
    switches = request.effective_switches
    return {"mode": request.mode.value, "prompt": request.prompt, "backbone": switches.backbone,
            "routing": switches.routing, "asymmetric_cfg": switches.asymmetric, "gates": switches.gates,
            "routing_preset": request.routing_preset, "curves": request.curves is not None,
            "content_lora": Path(request.content_lora.path).name if request.content_lora else None,
            "style_lora": Path(request.style_lora.path).name if request.style_lora else None,
            "content_weight": request.content_lora.weight if request.content_lora else None,
            "style_weight": request.style_lora.weight if request.style_lora else None}


def cost_summary(entries: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per method: median seconds per image and step over `entries` (one per pair and reference
    seed), and the median of its ratio to the base model's on the same entry (so the base is 1)."""
    out: dict[str, dict[str, float]] = {}
    for name in names:
        timed = [e for e in entries if "seconds_per_step" in e["methods"].get(name, {})]
        if not timed:
            continue
        ratios = [e["methods"][name]["seconds_per_step"] / e["methods"][BASE]["seconds_per_step"]
                  for e in timed if e["methods"].get(BASE, {}).get("seconds_per_step")]
        out[name] = {"seconds_per_step": statistics.median(e["methods"][name]["seconds_per_step"] for e in timed),
                     **({"relative": statistics.median(ratios)} if ratios else {})}
    return out


def ziplora_summary(entries: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """ZipLoRA's merge seconds (one merge per pair and reference seed), apart from its cost column."""
    merges = [e["ziplora_merge"] for e in entries if e.get("ziplora_merge")]
    if not merges:
        return None
    seconds = [m["seconds"] for m in merges]
    return {"merges": len(merges), "steps": merges[0]["steps"], "seconds_mean": float(statistics.fmean(seconds)),
            "seconds": seconds}
