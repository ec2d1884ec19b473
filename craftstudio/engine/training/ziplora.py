"""ZipLoRA (Shah et al., "ZipLoRA: Any Subject in Any Style by Effectively Merging LoRAs",
arXiv 2311.13600): merge a content LoRA and a style LoRA into one LoRA file.

For every UNet module that either LoRA touches, the merged update is
    ΔW_m = ΔW_c · diag(m_c) + ΔW_s · diag(m_s),
m_c and m_s holding one coefficient per input column (they start at 1: the direct merge). The
coefficients, and nothing else, are trained for a few steps on the paper's objective:
    L = ‖ε_m(x_c, p_c) − ε_c(x_c, p_c)‖² + ‖ε_m(x_s, p_s) − ε_s(x_s, p_s)‖² + λ Σ_layers |cos(m_c, m_s)|
ε_m, ε_c, ε_s being the UNet with the merged, the content and the style LoRA, x_c and x_s noised
latents of content and style pictures, p_c and p_s their prompts. The first two terms keep each
LoRA's behaviour on its own domain; the last pushes the two LoRAs onto different columns, so
that they stop interfering where both would write. λ = 0.01 and 100 steps as published.

*Decisions:* the coefficients train with Adam at lr 0.01 (they are O(1) numbers, not weights);
the noise level is drawn uniformly over the training schedule as in LoRA training; without
reference pictures each LoRA draws its own from its prompt alone (direct mode, the base model's
sampler), which are exactly the behaviour the first two terms preserve.

The written file is an ordinary LoRA: per module, the two LoRAs' down-projections scaled column
by column (and by their scales) stacked over a rank of r_c + r_s, the up-projections side by side;
no alpha (scale 1). It loads in any tool that reads diffusers/peft LoRAs, and in ours.
"""

from __future__ import annotations

import json
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from craftstudio.domain.cancel import CancelToken
from craftstudio.domain.errors import LoraError, NonFiniteOutput, UserError
from craftstudio.domain.markers import strip_markers
from craftstudio.domain.merging import ZipLoraRequest
from craftstudio.domain.progress import ProgressCallback
from craftstudio.engine.atomic import atomic_path
from craftstudio.engine.inputs import regular_safetensors
from craftstudio.engine.lora_adapters import LoraWeights, load_lora
from craftstudio.engine.training.data import collect_images, load_set
from craftstudio.engine.training.denoising import (
    DenoisingSetup,
    LatentCache,
    batch_indices,
    draw_batch,
    encode_captions,
    make_noise_scheduler,
    predict,
    step_generator,
)
from craftstudio.engine.training.loop import (
    LoopHooks,
    check_output,
    load_training_model,
    run_steps,
    tell,
    user_errors,
)
from craftstudio.engine.training.losses import make_denoising_loss

CONTENT, STYLE, MERGED = "content", "style", "merged"


@dataclass
class ZipLoraResult:
    request: ZipLoraRequest
    out: str
    seconds: float
    device: str
    losses: list[dict[str, float]]
    layers: int
    similarity: float  # mean |cos(m_c, m_s)| over the layers both LoRAs touch, at the end


class Mergers(nn.Module):
    """The trainable coefficient vectors, one per (module, LoRA) pair."""

    def __init__(self, content: LoraWeights, style: LoraWeights, device: torch.device) -> None:
        super().__init__()
        self.deltas = {CONTENT: content.deltas, STYLE: style.deltas}
        self.names = sorted(set(content.deltas) | set(style.deltas))
        self.vectors = nn.ParameterDict()
        for role, deltas in self.deltas.items():
            for name, delta in deltas.items():
                columns = delta.down.weight.shape[1]
                self.vectors[_key(role, name)] = nn.Parameter(torch.ones(columns, device=device))

    def vector(self, role: str, name: str) -> torch.Tensor | None:
        key = _key(role, name)
        return self.vectors.get(key)

    def similarity(self) -> torch.Tensor:
        """Σ over modules both LoRAs touch of |cos(m_c, m_s)|."""
        terms = [torch.nn.functional.cosine_similarity(self.vector(CONTENT, n), self.vector(STYLE, n), dim=0).abs()
                 for n in self.names if self.vector(CONTENT, n) is not None and self.vector(STYLE, n) is not None]
        return torch.stack(terms).sum() if terms else torch.zeros((), device=next(self.parameters()).device)


def _key(role: str, name: str) -> str:
    return f"{role}:{name}".replace(".", "/")  # ParameterDict keys may not hold dots


class Switch:
    """Which update the hooked modules add: one LoRA alone, or the merged one."""

    def __init__(self) -> None:
        self.mode = MERGED


def _scaled_input(x: torch.Tensor, vector: torch.Tensor, conv: bool) -> torch.Tensor:
    shape = (1, -1, 1, 1) if conv else (-1,)
    return x * vector.view(shape).to(x.dtype)


@contextmanager
def hooked(unet: nn.Module, mergers: Mergers, switch: Switch):
    """Add each module's LoRA update (as `switch` says) to its output, for the length of the block."""
    handles = []

    def hook_for(name: str):
        module = unet.get_submodule(name)
        conv = isinstance(module, nn.Conv2d)

        def hook(_module, args, output):
            x = args[0]
            total = output
            for role in (CONTENT, STYLE):
                delta = mergers.deltas[role].get(name)
                if delta is None or (switch.mode != MERGED and switch.mode != role):
                    continue
                inputs = x if switch.mode != MERGED else _scaled_input(x, mergers.vector(role, name), conv)
                down, up = delta.down, delta.up
                update = up(down(inputs.to(down.weight.dtype))) * delta.scale
                total = total + update.to(total.dtype)
            return total
        return module.register_forward_hook(hook)

    try:
        handles = [hook_for(name) for name in mergers.names]
        yield
    finally:
        for handle in handles:
            handle.remove()


def merged_state_dict(mergers: Mergers) -> dict[str, torch.Tensor]:
    """The merged LoRA in the diffusers/peft layout (`unet.<module>.lora_A/B.weight`, scale 1)."""
    state: dict[str, torch.Tensor] = {}
    for name in mergers.names:
        downs, ups = [], []
        for role in (CONTENT, STYLE):
            delta = mergers.deltas[role].get(name)
            if delta is None:
                continue
            vector = mergers.vector(role, name).detach().float()
            down = delta.down.weight.detach().float()
            shape = (1, -1, *([1] * (down.dim() - 2)))
            downs.append(down * vector.view(shape).to(down.device))
            ups.append(delta.up.weight.detach().float() * delta.scale)
        if len({d.shape[2:] for d in downs}) > 1:
            raise LoraError(f"The two LoRAs use different kernel sizes in {name}: they cannot be merged into "
                            "one LoRA file.")
        state[f"unet.{name}.lora_A.weight"] = torch.cat(downs, dim=0).cpu().contiguous()
        state[f"unet.{name}.lora_B.weight"] = torch.cat(ups, dim=1).cpu().contiguous()
    return state


def save_merged(state: dict[str, torch.Tensor], out: Path, metadata: dict[str, str], overwrite: bool) -> Path:
    from safetensors.torch import save_file

    bad = next((name for name, t in state.items() if not bool(torch.isfinite(t).all())), None)
    if bad is not None:
        raise NonFiniteOutput(f"The merged LoRA holds non-finite values in {bad}, so {out} was not written: "
                              "lower the learning rate and merge again.")
    check_output(out, overwrite)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            save_file(state, str(tmp), metadata=metadata)
    except OSError as exc:
        raise UserError(f"Could not write {out}: {exc.strerror or exc}; free some disk space or choose another "
                        "folder.") from exc
    return out


def _own_pictures(request: ZipLoraRequest, role: str, lora: str, prompt: str, folder: Path, resolution: int,
                  cancel: CancelToken | None) -> list[Path]:
    """Pictures a LoRA draws from its prompt alone (no references given)."""
    from craftstudio.domain.generation import FusionSwitches, GenerateRequest, LoraRef
    from craftstudio.engine import model_cache
    from craftstudio.engine.generation import generate

    ref = LoraRef(lora)
    generated = generate(GenerateRequest(
        model=request.model, prompt=prompt, width=resolution, height=resolution, steps=20, seed=request.seed,
        batch_count=request.samples, device=request.device, switches=FusionSwitches.for_mode("direct"),
        content_lora=ref if role == CONTENT else None, style_lora=ref if role == STYLE else None), cancel=cancel)
    model_cache.clear()  # the merge trains on its own copy of the model
    paths = []
    for index, image in enumerate(generated.images):
        path = folder / f"{role}-{index}.png"
        image.save(path)
        paths.append(path)
    return paths


def merge_ziplora(request: ZipLoraRequest, *, progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> ZipLoraResult:
    """Merge the request's two LoRAs (see module doc); raises `Cancelled` or a `UserError`."""
    request.validate()
    started = time.perf_counter()
    out = check_output(request.out, request.overwrite)
    for what, path in (("content", request.content_lora), ("style", request.style_lora)):
        regular_safetensors(path, f"The {what} LoRA", LoraError)
    prompts = {CONTENT: strip_markers(request.content_prompt), STYLE: strip_markers(request.style_prompt)}
    trained = load_training_model(request, progress)
    with tempfile.TemporaryDirectory(prefix="craftstudio-ziplora-") as tmp:
        pictures: dict[str, list[Path]] = {}
        for role, given, lora in ((CONTENT, request.content_images, request.content_lora),
                                  (STYLE, request.style_images, request.style_lora)):
            if given:
                pictures[role] = list(collect_images(given, what=f"{role} pictures").paths)
            else:
                tell(progress, "prepare", f"drawing {request.samples} pictures with the {role} LoRA")
                pictures[role] = _own_pictures(request, role, lora, prompts[role], Path(tmp), trained.resolution,
                                               cancel)
        return _merge(request, trained, pictures, prompts, out, started, progress, cancel)


def _merge(request, trained, pictures, prompts, out, started, progress, cancel) -> ZipLoraResult:
    model, device, precision, resolution = trained.model, trained.device, trained.precision, trained.resolution
    with user_errors(device, "merging the LoRAs"):
        loras = {role: load_lora(path, model) for role, path in ((CONTENT, request.content_lora),
                                                                  (STYLE, request.style_lora))}
        for lora in loras.values():
            for delta in lora.deltas.values():
                delta.down.to(device, torch.float32).requires_grad_(False)
                delta.up.to(device, torch.float32).requires_grad_(False)
        tell(progress, "prepare", "encoding pictures")
        latents = {role: LatentCache.encode(model, load_set(paths, resolution)) for role, paths in pictures.items()}
        text = {role: encode_captions(model, [prompts[role]], resolution) for role in (CONTENT, STYLE)}
        unet = model.unet.requires_grad_(False)
        mergers = Mergers(loras[CONTENT], loras[STYLE], device)
        optimizer = torch.optim.Adam(mergers.parameters(), lr=request.learning_rate)
        noise_scheduler = make_noise_scheduler(model.pipeline.scheduler.config)
        setup = DenoisingSetup(unet, noise_scheduler, precision, make_denoising_loss("mse", noise_scheduler))
        steps_total = noise_scheduler.config.num_train_timesteps
        switch = Switch()
        losses: list[dict[str, float]] = []

        def one_step(step: int) -> dict[str, float]:
            gen = step_generator(request.seed, step)
            terms: dict[str, torch.Tensor] = {}
            for role in (CONTENT, STYLE):
                cache = latents[role]
                batch = draw_batch(cache, batch_indices(len(cache), 1, request.seed, step), gen, steps_total, device)
                with torch.no_grad():
                    switch.mode = role
                    target = predict(setup, batch, text[role]).float()
                switch.mode = MERGED
                terms[role] = torch.nn.functional.mse_loss(predict(setup, batch, text[role]).float(), target)
            similarity = mergers.similarity()
            loss = terms[CONTENT] + terms[STYLE] + request.similarity_weight * similarity
            optimizer.zero_grad(set_to_none=True)
            precision.backward(loss)
            precision.step(optimizer)
            return {"loss": float(loss.detach()), "content": float(terms[CONTENT].detach()),
                    "style": float(terms[STYLE].detach()), "similarity": float(similarity.detach())}

        with hooked(unet, mergers, switch):
            tell(progress, "train", "merging", 0, request.steps)
            run_steps(LoopHooks(one_step, lambda _step: None), start=0, total=request.steps, checkpoint_every=0,
                      sample_every=0, losses=losses, progress=progress, cancel=cancel)
    tell(progress, "save", f"saving {out}")
    both = [n for n in mergers.names if n in loras[CONTENT].deltas and n in loras[STYLE].deltas]
    final = float(mergers.similarity().detach()) / max(1, len(both))
    metadata = {"craft.kind": "ziplora", "craft.family": model.family.value,
                "craft.request": json.dumps(request.to_dict(), ensure_ascii=False),
                "craft.sources": json.dumps({role: {"path": str(lora.path), "sha256": lora.sha256}
                                             for role, lora in loras.items()}),
                "craft.similarity": f"{final:.4f}", "ss_network_module": "networks.lora"}
    save_merged(merged_state_dict(mergers), out, metadata, request.overwrite)
    return ZipLoraResult(request=request, out=str(out), seconds=time.perf_counter() - started, device=str(device),
                         losses=losses, layers=len(mergers.names), similarity=final)
