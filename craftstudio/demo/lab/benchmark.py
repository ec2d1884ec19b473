"""`python -m craftstudio.demo benchmark`: CRAFT-LoRA's quality benchmark in ShapesWorld.

For each (held-out shape, held-out style) pair the benchmark
1. renders references: the content reference is the held-out shape drawn in a *training* style
   (never the target style), the style reference is the held-out style on a *training* shape, so
   leakage (the reference's other half showing up in a result) is measurable. `--ref-classes K`
   spreads a concept's references over K training classes; each reference has a caption file
   naming its class (`a star in zxq style`), and leakage then counts any of the K;
2. trains LoRAs with the project's trainer: per concept a routed LoRA (content on I_c, style on
   I_s) and an unrouted one (an override moves every block to the LoRA's role, so it trains on all
   attention layers, as LoRAs elsewhere do), each on W_init (with the Rank-FT backbone) and on W0,
   plus the peers' files (a B-LoRA per concept, a ZipLoRA merge per pair); with `--lora-workers N`
   N at a time, each starting as soon as the files it needs exist;
3. generates M images per pair under the paper's 8 ablation rows (backbone × routing × asymmetric
   CFG; gates follow the `paper` curves, or `--curves PRESET`, when asymmetric CFG is on, constant
   otherwise). `direct`
   merge (`FusionSwitches.for_mode("direct")` with the unrouted W0 LoRAs) is exactly the row with
   every switch off, so it is generated once and reported under both names;
4. scores every image with the oracle: content accuracy (shape right), style accuracy, combination
   (both right), target-class probabilities, cosine similarity of the oracle embeddings to the
   references (the CLIP-I analogue) and leakage (the content reference's style, or the style
   reference's shape, predicted);
5. beside the 8 rows, the peers (`--peers`, all by default; benchmark_peers.py says how each is
   run) on the same pairs and seeds, and the base model without LoRA; every method's cost per
   sampler step relative to that base model, timed in the same run (ZipLoRA's merge apart).
`--no-backbone` trains no backbone and only the W0 LoRAs, and generates the 4 rows without it.
`--resume` keeps every file and generated batch already in the work folder that was made from the same
request (parallel_training.trained_before, benchmark_generation.load_batch), so a stopped run continues.
`--ref-seeds` (commands.py) repeats the whole run per reference seed and merges the runs (`merge`):
each pair's numbers are then averaged over the seeds before the mean ± std over pairs. The tables,
JSON, contact sheet and printed report of a result are benchmark_report.py's.

Sharing (decision, to keep the CPU run short): the content reference is in a training style and the
style reference on a training shape whatever the pair, so a concept's LoRA is the same for every
pair it appears in and is trained once; likewise one backbone is trained on the references of all
chosen concepts (the paper trains it on content and style references; here the set is the union).
Trigger words come from `vocabulary.TRIGGERS`, one per concept. Every seed derives from `--seed`.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from craftstudio.demo.lab.benchmark_generation import generate_all
from craftstudio.demo.lab.benchmark_peers import (
    B_LORA,
    BASE,
    PAPERS,
    PEER_NAMES,
    PEERS,
    SAMPLER_PEERS,
    ZIPLORA,
    base_request,
    cost_summary,
    describe,
    peer_request,
    plain_prompt,
    reweighted,
    weight_name,
    ziplora_summary,
)
from craftstudio.demo.lab.parallel_training import train_many
from craftstudio.demo.lab.vocabulary import TRIGGERS
from craftstudio.demo.world import KEEP_PICTURES, SPLIT, caption, marked_prompt, render, write_base_pictures
from craftstudio.domain.training import MINOR_INIT, BackboneTrainRequest

CONTENT, STYLE = "content", "style"
# The paper's ablation rows: (backbone, routing, asymmetric CFG); gates follow asymmetric CFG.
ROWS: tuple[tuple[bool, bool, bool], ...] = (
    (False, False, False), (True, False, False), (False, True, False), (False, False, True),
    (True, True, False), (True, False, True), (False, True, True), (True, True, True),
)
DIRECT = "direct merge"
FULL = "CRAFT (full)"
NO_BACKBONE = "CRAFT without backbone"  # routing and asymmetric CFG on W0
# Asymmetric CFG multiplies the conditional branch's LoRA delta by s (Eq. 11), so a LoRA trained
# to add δ adds ≈ s·δ; a lower style weight γ_s (the prompt's `<s:γ>`) keeps s·γ_s·δ near δ.
METRICS = ("content_acc", "style_acc", "both_acc", "content_prob", "style_prob", "content_cos", "style_cos",
           "content_leak", "style_leak")


# Settings that change how a run went, not what it compares, so runs that differ in them merge
# (`reuse_loras` is `resume`'s former name; the compiled training step trains the same weights).
HOW = ("pairs", "workdir", "seed", "ref_seeds", "lora_workers", "gen_workers", "threads", "resume", "reuse_loras",
       "fast_training")


def row_name(row: tuple[bool, bool, bool]) -> str:
    backbone, routing, acfg = row
    return f"backbone={'on' if backbone else 'off'},routing={'on' if routing else 'off'},acfg={'on' if acfg else 'off'}"


@dataclass(frozen=True)
class BenchConfig:
    model: str
    pairs: tuple[tuple[str, str], ...]
    images: int = 8  # generated per pair and method
    seed: int = 0
    steps: int = 20  # sampler steps
    cfg: float = 5.0
    scheduler: str = "dpmpp_2m_karras"
    device: str = "cpu"
    threads: int = 2
    refs: int = 4  # reference images per concept
    plain_content_captions: bool = False  # content references captioned `a {trigger}` only
    ref_classes: int = 1  # training classes the references of a concept show it with (leakage counts any)
    lora_steps: int = 300
    lora_rank: int = 8
    lora_lr: float = 2e-3
    lora_batch: int = 4
    backbone_steps: int = 200
    backbone_batch: int = 4
    r_max: int = 16
    r_min: int = 4
    curves: str = "paper"  # curve preset of the asymmetric-CFG rows (gates and guidance over the steps)
    lora_workers: int = 1  # LoRAs trained at once, one process each (demo/parallel_training.py)
    backbone_init: str = MINOR_INIT  # where the Rank-FT bases start (BackboneTrainRequest.init)
    backbone_keep: int = KEEP_PICTURES  # preservation pictures of the base model's classes (0 = none)
    keep_weight: float = BackboneTrainRequest.keep_weight  # κ of the preservation term
    workdir: str = ""  # "" = a temporary folder
    oracle: str | None = None
    style_gamma: float | None = None  # also run CRAFT with `<s:γ_s>`, with and without the backbone
    auto_style_gamma: bool = False  # also run CRAFT at each style LoRA's γ* (probes.auto_style_weight)
    peers: tuple[str, ...] = PEERS  # peer methods beside the 8 rows (benchmark_peers.PEERS)
    ziplora_steps: int = 100  # ZipLoRA's merge steps per pair (the paper's 100)
    peer_style_gamma: float | None = None  # also run the direct merge and the peers (not ZipLoRA) with this style weight
    backbone: bool = True  # False: no Rank-FT backbone, only W0 LoRAs and the 4 rows without it (half the training)
    fast_training: bool = False  # compiled training steps (the requests' `fast`): the same weights, sooner on a GPU
    resume: bool = False  # keep every file and generated batch in `workdir` made from the same request
    gen_workers: int = 1  # pairs generated at once, one process each (benchmark_generation.py)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["pairs"] = [list(p) for p in self.pairs]
        data["peers"] = list(self.peers)
        return data


def choose_pairs(explicit: Sequence[str] = (), count: int = 0) -> tuple[tuple[str, str], ...]:
    """`CONTENT:STYLE` specs (held-out classes only), else all held-out pairs (the first `count`)."""
    if explicit:
        pairs = []
        for spec in explicit:
            content, sep, style = spec.partition(":")
            if not sep or not content or not style:
                raise ValueError(f"--pair {spec!r} must read CONTENT:STYLE, e.g. heart:neon.")
            if content not in SPLIT.heldout_shapes:
                raise ValueError(f"--pair {spec!r}: {content!r} is not a held-out shape; choose one of "
                                 f"{', '.join(SPLIT.heldout_shapes)}.")
            if style not in SPLIT.heldout_styles:
                raise ValueError(f"--pair {spec!r}: {style!r} is not a held-out style; choose one of "
                                 f"{', '.join(SPLIT.heldout_styles)}.")
            pairs.append((content, style))
        return tuple(dict.fromkeys(pairs))
    pairs = [(c, s) for c in SPLIT.heldout_shapes for s in SPLIT.heldout_styles]
    if count < 0:
        raise ValueError(f"--pairs must be 0 (all) or more, not {count}.")
    return tuple(pairs[:count] if count else pairs)


@dataclass(frozen=True)
class Concept:
    """One held-out class a LoRA learns, with its trigger and references."""

    role: str
    name: str
    trigger: str
    others: tuple[str, ...]  # per reference: the training class it shows the concept with
    seeds: tuple[int, ...]
    plain: bool = False  # content captions name only the trigger (`a sks`), not the reference's style

    @property
    def other(self) -> str:
        """The reference classes, as one label."""
        return "/".join(dict.fromkeys(self.others))

    def captions(self) -> list[str]:
        # DreamBooth-style: name what is not the concept, so the trigger binds only the concept.
        if self.role == CONTENT:
            return [("a {trigger}" if self.plain else caption("{trigger}", other)) for other in self.others]
        return [caption(other, "{trigger}") for other in self.others]

    def images(self):
        if self.role == CONTENT:
            return [render(self.name, other, s) for other, s in zip(self.others, self.seeds, strict=True)]
        return [render(other, self.name, s) for other, s in zip(self.others, self.seeds, strict=True)]


def make_concepts(pairs: Sequence[tuple[str, str]], refs: int, seed: int, ref_classes: int = 1,
                  plain_content_captions: bool = False) -> dict[tuple[str, str], Concept]:
    """Triggers in a fixed order (shapes first) and deterministic reference classes and seeds: the
    references of a concept cycle through `ref_classes` training classes."""
    shapes = list(dict.fromkeys(c for c, _ in pairs))
    styles = list(dict.fromkeys(s for _, s in pairs))
    rng = np.random.default_rng([seed, 0xBE7C])
    concepts: dict[tuple[str, str], Concept] = {}
    for i, (role, name) in enumerate([(CONTENT, s) for s in shapes] + [(STYLE, s) for s in styles]):
        pool = SPLIT.train_styles if role == CONTENT else SPLIT.train_shapes
        if ref_classes == 1:
            classes = [pool[int(rng.integers(len(pool)))]]
        else:
            classes = [pool[int(k)] for k in rng.choice(len(pool), size=min(ref_classes, len(pool)), replace=False)]
        seeds = tuple(int(x) for x in rng.integers(2**40, size=refs))
        others = tuple(classes[k % len(classes)] for k in range(refs))
        concepts[(role, name)] = Concept(role, name, TRIGGERS[i], others, seeds,
                                         plain=plain_content_captions and role == CONTENT)
    return concepts


def prompt_for(content: Concept, style: Concept, style_gamma: float | None = None) -> str:
    return marked_prompt(content.trigger, style.trigger, style_gamma)


AUTO = "γ*"  # the style weight worked out per style LoRA (probes.auto_style_weight)


def gamma_name(style_gamma: float | str, backbone: bool = True) -> str:
    value = style_gamma if isinstance(style_gamma, str) else f"{style_gamma:g}"
    return f"{FULL if backbone else NO_BACKBONE}, γ_s = {value}"


def rows(config: BenchConfig) -> tuple[tuple[bool, bool, bool], ...]:
    """The ablation rows the run generates: all 8, or the 4 without the backbone (`backbone=False`)."""
    return ROWS if config.backbone else tuple(r for r in ROWS if not r[0])


def weights_on(config: BenchConfig) -> tuple[bool, ...]:
    """Which weights the run's LoRAs train on: W_init (True) and W0, or W0 alone without a backbone."""
    return (True, False) if config.backbone else (False,)


def methods(config: BenchConfig) -> list[tuple[str, tuple[bool, bool, bool], float | str | None]]:
    """(name, switches row, style weight) of every generated method: the ablation rows, then routing
    and asymmetric CFG with the style weight γ_s (and with each pair's γ*, `AUTO`), on W_init (when
    the run has a backbone) and on W0."""
    out: list[tuple[str, tuple[bool, bool, bool], float | str | None]] = [(row_name(r), r, None) for r in rows(config)]
    weights: list[float | str] = [config.style_gamma] if config.style_gamma is not None else []
    if config.auto_style_gamma:
        weights.append(AUTO)
    for gamma in weights:
        if config.backbone:
            out.append((gamma_name(gamma), ROWS[-1], gamma))
        out.append((gamma_name(gamma, backbone=False), (False, True, True), gamma))
    return out


def all_names(config: BenchConfig) -> list[str]:
    """Every scored method in generation order: the base model, the 8 rows (and the γ_s rows),
    then the peers."""
    return [BASE, *(name for name, _, _ in methods(config)), *(PEER_NAMES[p] for p in config.peers),
            *peer_weight_names(config)]


def peer_weight_names(config: BenchConfig) -> list[str]:
    """The direct merge's and the peers' rows at `--peer-style-gamma` (none without it)."""
    if config.peer_style_gamma is None:
        return []
    labels = [DIRECT, *(PEER_NAMES[p] for p in reweighted(config.peers))]
    return [weight_name(label, config.peer_style_gamma) for label in labels]


def aliases(config: BenchConfig) -> dict[str, str]:
    """Table 1's rows: label → method (the base model, direct merge, the peers, CRAFT, the γ_s rows)."""
    out = {BASE: BASE, DIRECT: row_name(ROWS[0])}
    out.update({PEER_NAMES[p]: PEER_NAMES[p] for p in config.peers})
    out.update({name: name for name in peer_weight_names(config)})
    if config.backbone:
        out[FULL] = row_name(ROWS[-1])
    else:
        out[NO_BACKBONE] = row_name((False, True, True))
    for gamma, on in ((config.style_gamma, config.style_gamma is not None), (AUTO, config.auto_style_gamma)):
        if on:
            out.update({name: name for name in (gamma_name(gamma, b) for b in weights_on(config))})
    return out


class _Printer:
    """A compact training progress line every few steps."""

    def __init__(self, label: str, log: Callable[[str], None], every: int = 20) -> None:
        self.label, self.log, self.every = label, log, every

    def __call__(self, event) -> None:
        if event.stage != "train" or not event.values:
            return
        if event.step % self.every == 0 or event.step == event.total:
            self.log(f"    {self.label}: step {event.step}/{event.total} loss {event.values.get('loss', 0):.4f} "
                     f"eta {event.values.get('eta_s', 0):.0f}s")


def _std(values: list[float]) -> float:
    return float(np.std(values)) if len(values) > 1 else 0.0


def run_benchmark(config: BenchConfig, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train, generate and score; returns the raw numbers, the summaries and the samples."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run(config, log)
    finally:
        torch.set_num_threads(previous)  # the caller's process keeps its own thread count


def _run(config: BenchConfig, log: Callable[[str], None]) -> dict[str, Any]:
    import tempfile

    import torch

    from craftstudio.demo.oracle import Oracle
    from craftstudio.domain.curves import load_preset
    from craftstudio.domain.generation import FusionSwitches, GenerateRequest, LoraRef
    from craftstudio.domain.merging import ZipLoraRequest
    from craftstudio.domain.training import LoraTrainRequest

    if not config.pairs:
        raise ValueError("No pairs to benchmark.")
    began = time.perf_counter()
    timing: dict[str, float] = {}
    work = Path(config.workdir) if config.workdir else Path(tempfile.mkdtemp(prefix="craft-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    oracle = Oracle.load(config.oracle)

    def say(text: str) -> None:
        log(f"[{time.perf_counter() - began:7.1f}s] {text}")

    # 1. References.
    concepts = make_concepts(config.pairs, config.refs, config.seed, config.ref_classes,
                             config.plain_content_captions)
    folders: dict[tuple[str, str], Path] = {}
    for key, concept in concepts.items():
        folder = work / "refs" / f"{concept.role}-{concept.name}"
        folder.mkdir(parents=True, exist_ok=True)
        for i, (image, text) in enumerate(zip(concept.images(), concept.captions(), strict=True)):
            image.save(folder / f"{i:02d}.png")
            (folder / f"{i:02d}.txt").write_text(text + "\n", encoding="utf-8")  # the image's own caption
        folders[key] = folder
        say(f"references: {concept.role} {concept.name!r} = trigger {concept.trigger!r}, {config.refs} image(s) "
            f"on {concept.other!r}; captions like {concept.captions()[0].format(trigger=concept.trigger)!r}")
    for role in (CONTENT, STYLE):
        union = work / "refs" / f"all-{role}"
        union.mkdir(parents=True, exist_ok=True)
        for key, folder in folders.items():
            if key[0] == role:
                for path in sorted(folder.glob("*.png")):  # images only: backbone captions are fixed
                    (union / f"{key[1]}-{path.name}").write_bytes(path.read_bytes())

    # 2. Training: one backbone, 4 LoRAs per concept (and a B-LoRA), a ZipLoRA merge per pair; with
    # --lora-workers N, N at a time, each starting once the files it needs are there (the backbone for
    # LoRAs on W_init, the pair's unrouted W0 LoRAs for a merge).
    t0 = time.perf_counter()
    backbone = work / "backbone.safetensors"
    keep = (write_base_pictures(work / "refs" / "keep", config.backbone_keep, config.seed)
            if config.backbone_keep and config.backbone else None)
    requests: dict[str, Any] = {"backbone": BackboneTrainRequest(
        model=config.model, content_dir=str(work / "refs" / "all-content"), style_dir=str(work / "refs" / "all-style"),
        out=str(backbone), r_max=config.r_max, r_min=config.r_min, init=config.backbone_init,
        keep_dir=str(keep or ""), keep_weight=config.keep_weight, steps=config.backbone_steps,
        batch_size=config.backbone_batch, max_content=100, max_style=100, seed=config.seed, device=config.device,
        resolution=64,
        gradient_checkpointing=False, checkpoint_every=0, overwrite=True, fast=config.fast_training,
    )} if config.backbone else {}
    after: dict[str, tuple[str, ...]] = {}
    loras: dict[tuple[str, str, bool, bool], Path] = {}
    blora: dict[tuple[str, str], Path] = {}
    for index, (key, concept) in enumerate(concepts.items()):
        everything = {"down_blocks": concept.role, "mid_block": concept.role, "up_blocks": concept.role}
        for use_backbone in weights_on(config):
            for routed in (True, False):
                name = (f"{concept.role}-{concept.name}-{'bb' if use_backbone else 'w0'}-"
                        f"{'routed' if routed else 'all'}")
                out = work / f"{name}.safetensors"
                requests[name] = LoraTrainRequest(
                    role=concept.role, model=config.model, images=(str(folders[key]),), trigger=concept.trigger,
                    out=str(out), backbone=str(backbone) if use_backbone else None, caption=concept.captions()[0],
                    rank=config.lora_rank, learning_rate=config.lora_lr, steps=config.lora_steps, resolution=64,
                    batch_size=config.lora_batch, seed=config.seed + 1 + index, device=config.device,
                    gradient_checkpointing=False, checkpoint_every=0, overwrite=True,
                    routing_overrides=None if routed else everything, fast=config.fast_training,
                )
                if use_backbone:
                    after[name] = ("backbone",)
                loras[(*key, use_backbone, routed)] = out
        if B_LORA in config.peers:  # B-LoRA: the concept in its role's one block, on W0
            name = f"{concept.role}-{concept.name}-w0-blora"
            requests[name] = dataclasses.replace(requests[f"{concept.role}-{concept.name}-w0-routed"],
                                                 out=str(work / f"{name}.safetensors"), routing_preset=B_LORA)
            blora[key] = Path(requests[name].out)
    lora_count = len(requests) - config.backbone
    merges: dict[str, ZipLoraRequest] = {}
    if ZIPLORA in config.peers:  # one ZipLoRA file per pair, from the pair's unrouted W0 LoRAs
        for content, style in config.pairs:
            c, s = concepts[(CONTENT, content)], concepts[(STYLE, style)]
            name = f"ziplora:{content}:{style}"
            merges[name] = requests[name] = ZipLoraRequest(
                model=config.model, content_lora=str(loras[(CONTENT, content, False, False)]),
                style_lora=str(loras[(STYLE, style, False, False)]),
                content_prompt=c.captions()[0].format(trigger=c.trigger),
                style_prompt=s.captions()[0].format(trigger=s.trigger),
                out=str(work / f"ziplora-{content}-{style}.safetensors"),
                content_images=(str(folders[(CONTENT, content)]),), style_images=(str(folders[(STYLE, style)]),),
                steps=config.ziplora_steps, resolution=64, seed=config.seed, device=config.device, overwrite=True)
            after[name] = (f"content-{content}-w0-all", f"style-{style}-w0-all")
    say((f"training the Rank-FT backbone ({config.backbone_steps} steps, r_max {config.r_max}, r_min {config.r_min}, "
         f"{config.backbone_init} init, {config.backbone_keep} preservation pictures at κ {config.keep_weight:g}), "
         if config.backbone else "training no backbone, ")
        + f"{lora_count} LoRAs ({config.lora_steps} steps)"
        f"{f' and {len(merges)} ZipLoRA merge(s) ({config.ziplora_steps} steps)' if merges else ''}"
        f"{f', {config.lora_workers} at a time' if config.lora_workers > 1 else ''}")
    training: dict[str, Any] = train_many(requests, workers=config.lora_workers, threads=config.threads, say=say,
                                          progress_for=lambda name: _Printer(name, say), after=after,
                                          reuse=config.resume)
    timing["training_s"] = time.perf_counter() - t0

    # 3. Generation (benchmark_generation.py: timed batches, kept in the work folder).
    t0 = time.perf_counter()
    curves = load_preset(config.curves).to_dict()
    cuda = config.device.startswith("cuda") or (config.device == "auto" and torch.cuda.is_available())

    def pair_requests(p: int, content: str, style: str) -> list[tuple[str, bool, GenerateRequest]]:
        """(method, on W_init?, request) of every method on pair `p`."""
        c, s = concepts[(CONTENT, content)], concepts[(STYLE, style)]
        common = dict(model=config.model, width=64, height=64, steps=config.steps, cfg_scale=config.cfg,
                      seed=config.seed + 1000 * p, scheduler=config.scheduler, batch_count=config.images,
                      device=config.device)
        plain = dict(common, prompt=plain_prompt(c.trigger, s.trigger))
        out = [(BASE, False, base_request(plain))]
        for name, row, gamma in methods(config):
            use_backbone, routing, acfg = row
            if gamma == AUTO:
                gamma = auto_gamma(content, style, use_backbone)
            switches = (FusionSwitches.for_mode("direct") if not any(row)
                        else FusionSwitches(backbone=use_backbone, routing=routing, asymmetric=acfg, gates=acfg))
            out.append((name, use_backbone, GenerateRequest(
                **common, prompt=prompt_for(c, s, gamma),
                content_lora=LoraRef(str(loras[(CONTENT, content, use_backbone, routing)])),
                style_lora=LoraRef(str(loras[(STYLE, style, use_backbone, routing)])),
                backbone=str(backbone) if use_backbone else None, switches=switches,
                curves=curves if acfg else None)))
        unrouted = (str(loras[(CONTENT, content, False, False)]), str(loras[(STYLE, style, False, False)]))

        def peer_files(peer: str) -> tuple[str, str | None]:
            if peer in SAMPLER_PEERS:  # the direct merge's LoRAs: unrouted, on W0
                return unrouted
            if peer == ZIPLORA:
                return merges[f"ziplora:{content}:{style}"].out, None
            return str(blora[(CONTENT, content)]), str(blora[(STYLE, style)])

        for peer in config.peers:
            out.append((PEER_NAMES[peer], False, peer_request(peer, plain, *peer_files(peer))))
        weight = config.peer_style_gamma
        if weight is not None:
            direct = next(request for name, _, request in out if name == row_name(ROWS[0]))  # the all-off row
            out.append((weight_name(DIRECT, weight), False,
                        dataclasses.replace(direct, style_lora=dataclasses.replace(direct.style_lora, weight=weight))))
            for peer in reweighted(config.peers):
                out.append((weight_name(PEER_NAMES[peer], weight), False,
                            peer_request(peer, plain, *peer_files(peer), style_weight=weight)))
        return out

    auto_gammas: dict[str, dict[str, float]] = {}

    def auto_gamma(content: str, style: str, use_backbone: bool) -> float:
        """γ* of the routed style LoRA of the pair on W_init or W0, measured once with the pair's
        prompt (probes.py)."""
        from craftstudio.demo.lab.probes import auto_style_weight, change_share

        key = f"{content}:{style}, {'W_init' if use_backbone else 'W0'}"
        if key not in auto_gammas:
            share = change_share(config.model, str(backbone) if use_backbone else None,
                                 str(loras[(STYLE, style, use_backbone, True)]),
                                 plain_prompt(concepts[(CONTENT, content)].trigger, concepts[(STYLE, style)].trigger),
                                 config.device)
            gamma = round(auto_style_weight(share["ratio"], share["cos"], config.cfg), 2)
            auto_gammas[key] = {"ratio": share["ratio"], "cos": share["cos"], "gamma": gamma}
            say(f"γ* of the {key} style LoRA: {gamma:g} (ρ {share['ratio']:.2f}, cos {share['cos']:.2f})")
        return auto_gammas[key]["gamma"]

    # Every job first (γ* is measured here, in this process), then the batches: grouped by backbone
    # in one process so the cached model is loaded once per W, or one pair per worker process.
    jobs = [(p, name, on_backbone, request) for p, (content, style) in enumerate(config.pairs)
            for name, on_backbone, request in pair_requests(p, content, style)]
    ordered = [(p, name, request) for p, name, _, request in sorted(jobs, key=lambda job: job[2])]  # W0 first
    units = ([[job for job in ordered if job[0] == p] for p in range(len(config.pairs))]
             if config.gen_workers > 1 else [ordered])
    made = generate_all(units, work / "samples", cuda=cuda, resume=config.resume, workers=config.gen_workers,
                        threads=config.threads, say=say)
    samples = {key: images for key, (images, _) in made.items()}
    seconds = {key: spent for key, (_, spent) in made.items()}
    setups = {(p, name): describe(request) for p, name, _, request in jobs}
    timing["generation_s"] = time.perf_counter() - t0
    timing["seconds_per_image"] = float(np.mean([t / config.images for t in seconds.values()]))

    # 4. Scoring.
    ref_images = {key: concept.images() for key, concept in concepts.items()}
    per_pair = []
    for p, (content, style) in enumerate(config.pairs):
        c, s = concepts[(CONTENT, content)], concepts[(STYLE, style)]
        c_ref = oracle.classify(ref_images[(CONTENT, content)])
        s_ref = oracle.classify(ref_images[(STYLE, style)])
        c_ref_emb = torch.nn.functional.normalize(c_ref.content_embedding.mean(0), dim=-1)
        s_ref_emb = torch.nn.functional.normalize(s_ref.style_embedding.mean(0), dim=-1)
        entry: dict[str, Any] = {"content": content, "style": style, "seed": config.seed,
                                 "prompt": prompt_for(c, s), "plain_prompt": plain_prompt(c.trigger, s.trigger),
                                 "content_reference": {"trigger": c.trigger, "drawn_in": list(c.others), "seeds": list(c.seeds)},
                                 "style_reference": {"trigger": s.trigger, "drawn_on": list(s.others), "seeds": list(s.seeds)},
                                 "methods": {}}
        leak_styles = torch.tensor([oracle.styles.index(o) for o in set(c.others)])
        leak_shapes = torch.tensor([oracle.shapes.index(o) for o in set(s.others)])
        for name in all_names(config):
            out = oracle.classify(samples[(p, name)])
            shape_pred, style_pred = out.content_probs.argmax(-1), out.style_probs.argmax(-1)
            entry["methods"][name] = {
                **oracle.target_scores(out, content, style),
                "content_cos": (out.content_embedding @ c_ref_emb).mean().item(),
                "style_cos": (out.style_embedding @ s_ref_emb).mean().item(),
                "content_leak": torch.isin(style_pred, leak_styles).float().mean().item(),
                "style_leak": torch.isin(shape_pred, leak_shapes).float().mean().item(),
                "seconds_per_image": seconds[(p, name)] / config.images,
                "seconds_per_step": seconds[(p, name)] / (config.images * config.steps),
                "predictions": [[oracle.shapes[a], oracle.styles[b]]
                                for a, b in zip(shape_pred.tolist(), style_pred.tolist(), strict=True)],
            }
        entry["setup"] = {name: setups[(p, name)] for name in all_names(config)}
        if ZIPLORA in config.peers:
            merged = training[f"ziplora:{content}:{style}"]
            entry["ziplora_merge"] = {"seconds": merged["seconds"], "steps": config.ziplora_steps,
                                      "final_loss": merged["final_loss"]}
        per_pair.append(entry)

    names = all_names(config)
    summary = summarize(per_pair, names)
    timing["total_s"] = time.perf_counter() - began
    say(f"done: training {timing['training_s']:.0f}s, generation {timing['generation_s']:.0f}s, "
        f"total {timing['total_s']:.0f}s")
    return {
        "config": config.to_dict(),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "torch_threads": config.threads, "device": config.device},
        "rows": [{"name": row_name(r), "backbone": r[0], "routing": r[1], "asymmetric_cfg": r[2], "gates": r[2]}
                 for r in rows(config)],
        "aliases": aliases(config),
        "peers": {PEER_NAMES[p]: {"peer": p, "arxiv": PAPERS[p]} for p in config.peers},
        "pairs": per_pair, "summary": summary, "cost": cost_summary(per_pair, names),
        "ziplora_merge": ziplora_summary(per_pair), "training": training, "timing": timing,
        "auto_style_gamma": auto_gammas,
        "_samples": samples, "_references": ref_images, "_concepts": concepts,
    }


def summarize(per_pair: list[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """Mean ± std over pairs of every metric of every method."""
    return {name: {m: {"mean": float(np.mean([e["methods"][name][m] for e in per_pair])),
                       "std": _std([e["methods"][name][m] for e in per_pair])} for m in METRICS}
            for name in names}


def merge(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One result from runs with the same settings over different pairs (e.g. one process per pair
    on a machine with many cores) and/or different reference seeds (`--seed`): each pair's numbers
    are averaged over its seeds, then summaries (mean ± std over pairs) and costs recomputed and
    times added. Runs must not share a pair at the same seed."""
    if not results:
        raise ValueError("Nothing to merge.")
    first = results[0]
    defaults = {f.name: f.default for f in dataclasses.fields(BenchConfig) if f.default is not dataclasses.MISSING}

    def settings(result: dict[str, Any]) -> dict[str, Any]:
        """What a run compares; a setting the run predates counts as its default."""
        config = result["config"]
        return {k: config.get(k, defaults.get(k)) for k in {*config, *defaults} if k not in HOW}

    for other in results[1:]:
        if settings(other) != settings(first):
            raise ValueError("These benchmark runs used different settings; only runs that differ in their "
                             "pairs or seeds can be merged.")
    # A merged result of several seeds brings its runs, not its seed-averaged pairs.
    runs = [{**entry, "seed": entry.get("seed", result["config"].get("seed", 0))}
            for result in results for entry in result.get("runs") or result["pairs"]]
    keys = [(e["content"], e["style"], e["seed"]) for e in runs]
    if len(set(keys)) != len(keys):
        raise ValueError("These benchmark runs share pairs at the same seed; merge runs over different pairs "
                         "or seeds.")
    names = list(first["summary"])
    per_pair = average_seeds(runs, names)
    seeds = sorted(dict.fromkeys(e["seed"] for e in runs))
    timing = {k: float(sum(r["timing"][k] for r in results)) for k in ("training_s", "generation_s", "total_s")}
    timing["seconds_per_image"] = float(np.mean([r["timing"]["seconds_per_image"] for r in results]))
    merged = dict(first)
    merged.update(config={**first["config"], "pairs": [[e["content"], e["style"]] for e in per_pair],
                          "ref_seeds": seeds},
                  pairs=per_pair, summary=summarize(per_pair, names), cost=cost_summary(runs, names),
                  ziplora_merge=ziplora_summary(runs), timing=timing,
                  training={f"{i}:{k}": v for i, r in enumerate(results) for k, v in r["training"].items()})
    if len(seeds) > 1:
        merged["runs"] = runs  # every (pair, seed) entry as measured
    return merged


def average_seeds(runs: Sequence[dict[str, Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    """One entry per pair (in first-seen order): every metric and time averaged over the pair's
    reference seeds, predictions joined; a pair run at one seed keeps its entry."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in runs:
        groups.setdefault((entry["content"], entry["style"]), []).append(entry)
    out = []
    for (content, style), entries in groups.items():
        if len(entries) == 1:
            out.append(entries[0])
            continue
        averaged: dict[str, Any] = {"content": content, "style": style, "seeds": [e["seed"] for e in entries],
                                    "prompt": entries[0].get("prompt"), "methods": {}}
        for name in names:
            values = [e["methods"][name] for e in entries]
            keys = [k for k in (*METRICS, "seconds_per_image", "seconds_per_step") if all(k in v for v in values)]
            averaged["methods"][name] = {
                **{k: float(np.mean([v[k] for v in values])) for k in keys},
                "predictions": [p for v in values for p in v.get("predictions", [])]}
        out.append(averaged)
    return out
