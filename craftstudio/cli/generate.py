"""`craftstudio generate`: images from a prompt, on the built-in demo when no model is given.

A user error raises `UserError` for the main to print as one line; torch and diffusers are
imported only when the command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from craftstudio.domain.errors import UserError
from craftstudio.domain.generation import (
    DEFAULT_CFG,
    DEFAULT_HIRES_STRENGTH,
    DEFAULT_MASK_BLUR,
    DEFAULT_SCHEDULER,
    DEFAULT_STRENGTH,
    DEVICES,
    PEER_MODES,
    SCHEDULERS,
)
from craftstudio.library.native_size import native_size_or_default


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 512x768, not {text!r}") from None
    return width, height


def add_command(sub) -> None:
    p = sub.add_parser("generate", help="generate images from a prompt")
    p.add_argument("--model", help="diffusers model folder or .safetensors checkpoint (default: the built-in "
                                   "ShapesWorld demo model, with its backbone and LoRAs)")
    p.add_argument("--prompt", help="the prompt (default with the demo model: its demo prompt)")
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--steps", type=int, default=20, help="denoising steps")
    p.add_argument("--cfg", type=float, default=None,
                   help=f"classifier-free guidance scale (default {DEFAULT_CFG:g}; the demo's own without --model)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--size", type=_size, metavar="WxH", help="image size (default: the model's native size, "
                                                           "e.g. 512x512 for SD1.x, 64x64 for the demo)")
    p.add_argument("--scheduler", default=DEFAULT_SCHEDULER, help=f"sampler, one of {', '.join(SCHEDULERS)}")
    p.add_argument("--batch", type=int, default=1, help="number of images (seeds seed, seed+1, ...)")
    p.add_argument("--device", default="auto", choices=DEVICES, help="where to run")
    p.add_argument("--devices", help="split the batch over these devices, one model each (e.g. cuda:0,cuda:1)")
    p.add_argument("--fast", action="store_true", help="compiled UNet with CUDA graphs (first use compiles)")
    p.add_argument("--low-vram", action="store_true", help="for small cards: CPU offload and VAE tiling")
    p.add_argument("--out", required=True, type=Path, help="output PNG (FILE-2.png etc. for a batch)")
    p.add_argument("--overwrite", action="store_true", help="replace output files that already exist")
    picture = p.add_argument_group("image to image, inpainting and hires")
    picture.add_argument("--init-image", type=Path, metavar="FILE",
                         help="start from this picture (size: its aspect at the model's native size unless --size)")
    picture.add_argument("--strength", type=float, default=DEFAULT_STRENGTH,
                         help=f"denoising strength for --init-image, in (0, 1] (default {DEFAULT_STRENGTH:g}; "
                              "1 redraws completely)")
    picture.add_argument("--mask", type=Path, metavar="FILE",
                         help="inpainting mask for --init-image: single-channel, white = redraw")
    picture.add_argument("--mask-blur", type=int, default=DEFAULT_MASK_BLUR, metavar="PX",
                         help=f"feather the mask's edge by this many pixels (default {DEFAULT_MASK_BLUR})")
    picture.add_argument("--hires", type=float, default=1.0, metavar="FACTOR",
                         help="enlarge each image by FACTOR (Lanczos) and redraw it at that size (1 = off)")
    picture.add_argument("--hires-strength", type=float, default=DEFAULT_HIRES_STRENGTH,
                         help=f"denoising strength of the hires pass (default {DEFAULT_HIRES_STRENGTH:g})")
    picture.add_argument("--hires-steps", type=int, default=0, help="steps of the hires pass (0 = --steps)")
    craft = p.add_argument_group("CRAFT fusion")
    craft.add_argument("--content-lora", type=_lora_ref, metavar="FILE[:WEIGHT]", help="content LoRA")
    craft.add_argument("--style-lora", type=_lora_ref, metavar="FILE[:WEIGHT]", help="style LoRA")
    craft.add_argument("--backbone", help="rank-constrained backbone file (W_init)")
    craft.add_argument("--mode", choices=["craft", "direct", *PEER_MODES], default="craft",
                       help="craft = all CRAFT components; direct = the plain weighted merge; peer "
                            "methods (no CRAFT component): k-lora = K-LoRA's per-layer Top-K choice, "
                            "switch = LoRA Switch (one LoRA at a time, in turn), composite = LoRA "
                            "Composite (each LoRA's guided prediction, averaged)")
    craft.add_argument("--curves", help="curve preset name or curves .json file (default: paper with "
                                        "LoRAs, else constant; the demo's own without --model)")
    craft.add_argument("--routing", dest="routing_preset", choices=["craft", "b-lora"], default="craft",
                       help="layer sets of the two LoRAs: craft (Eq. 7) or b-lora (one block each, arXiv 2403.14572)")
    craft.add_argument("--no-backbone", dest="use_backbone", action="store_false",
                       help="ablation: use the base weights W0 even if --backbone is given")
    craft.add_argument("--no-routing", dest="routing", action="store_false",
                       help="ablation: every LoRA on every layer it has weights for")
    craft.add_argument("--no-acfg", dest="asymmetric", action="store_false",
                       help="ablation: standard CFG with LoRAs in both branches")
    craft.add_argument("--no-gates", dest="gates", action="store_false", help="ablation: constant curves")
    p.set_defaults(func=_run_generate)


def _lora_ref(text: str):
    from craftstudio.domain.generation import LoraRef

    path, sep, weight = text.rpartition(":")
    if sep and path and not (len(path) == 1 and path.isalpha()):  # not a Windows drive letter
        try:
            return LoraRef(path, float(weight))
        except ValueError:
            pass
    return LoraRef(text, 1.0)


def _curves(spec: str | None, has_loras: bool) -> dict | None:
    from craftstudio.domain.curves import CurveSet, load_preset

    if spec is None:
        return load_preset("paper").to_dict() if has_loras else None
    if spec.endswith(".json") or Path(spec).is_file():
        return CurveSet.from_file(spec).to_dict()
    return load_preset(spec).to_dict()


def _switches(args):
    from craftstudio.domain.generation import FusionSwitches

    if args.mode == "direct" or args.mode in PEER_MODES:
        return FusionSwitches.for_mode(args.mode)
    return FusionSwitches(backbone=args.use_backbone, routing=args.routing, asymmetric=args.asymmetric,
                          gates=args.gates)


def _output_paths(out: Path, count: int) -> list[Path]:
    if out.suffix.lower() != ".png":
        raise UserError(f"Output {out} must be a .png file.")
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i + 1}{out.suffix}") for i in range(count)]


def check_outputs(outputs: list[Path], *, overwrite: bool) -> None:
    """Before any work: refuse to replace existing files without --overwrite, and make sure the
    folder can be written (a read-only folder would otherwise fail after the images were made)."""
    from craftstudio.domain.atomic_file import temp_file

    if not overwrite:
        taken = [p for p in outputs if os.path.lexists(p)]
        if taken:
            more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
            raise UserError(f"{taken[0]}{more} already exists: choose another --out or pass --overwrite.")
    folder = outputs[0].parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temp_file(outputs[0]).unlink()
    except OSError as exc:
        raise UserError(f"Cannot write into {folder} ({exc.strerror or exc}): make it writable or choose "
                        "another --out.") from exc
    for path in outputs:
        if path.is_dir():
            raise UserError(f"{path} is a folder: choose a .png file name for --out.")


class _TerminalProgress:
    """One tqdm bar per image on stderr."""

    def __init__(self) -> None:
        self._bar = None
        self._image = -1

    def __call__(self, event) -> None:
        from tqdm import tqdm

        if getattr(event, "stage", None) != "denoise":
            return
        if event.image_index != self._image:
            self.close()
            self._image = event.image_index
            label = f"image {event.image_index + 1}/{event.image_count}"
            self._bar = tqdm(total=event.total, desc=label, unit="step", file=sys.stderr, leave=True)
        self._bar.update(event.step - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _run_generate(args) -> int:
    from craftstudio.domain.generation import GenerateRequest
    from craftstudio.engine.multi_device import generate_on_devices
    from craftstudio.library.png_params import save_png

    _apply_demo_defaults(args)
    if args.cfg is None:
        args.cfg = DEFAULT_CFG
    if not args.prompt:
        raise UserError("No prompt: pass --prompt TEXT.")
    size = args.size or _default_size(args)
    has_loras = bool(args.content_lora or args.style_lora)
    peer = args.mode if args.mode in PEER_MODES else None
    if peer and args.curves:
        raise UserError(f"--curves shapes CRAFT's gates and guidance; --mode {peer} uses no curves: "
                        "drop --curves or choose --mode craft.")
    request = GenerateRequest(
        model=args.model, prompt=args.prompt, negative_prompt=args.negative, width=size[0],
        height=size[1], steps=args.steps, cfg_scale=args.cfg, seed=args.seed,
        scheduler=args.scheduler, batch_count=args.batch, device=args.device,
        content_lora=args.content_lora, style_lora=args.style_lora, backbone=args.backbone,
        switches=_switches(args), curves=None if peer else _curves(args.curves, has_loras), fast=args.fast,
        low_vram=args.low_vram, init_image=_path_text(args.init_image), strength=args.strength,
        mask=_path_text(args.mask), mask_blur=args.mask_blur, hires_factor=args.hires,
        hires_strength=args.hires_strength, hires_steps=args.hires_steps, routing_preset=args.routing_preset,
        peer_mode=peer,
    )
    request.validate()
    outputs = _output_paths(args.out, request.batch_count)
    check_outputs(outputs, overwrite=args.overwrite)
    bar = _TerminalProgress()
    try:
        result = generate_on_devices(request, args.devices, progress=bar)
    finally:
        bar.close()
    for note in (result.details.get("image_to_image") or {}).get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    extra = _infotext_extra(result)
    for image, seed, path in zip(result.images, result.seeds, outputs, strict=True):
        try:
            save_png(image, path, result.request, seed=seed, model_name=result.model_name, extra=extra,
                     record=result.details, overwrite=args.overwrite)
        except FileExistsError:
            raise UserError(f"{path} appeared while the images were made: it was kept; choose another "
                            "--out or pass --overwrite.") from None
        print(path)
    return 0


def _path_text(path: Path | None) -> str | None:
    return None if path is None else str(path.expanduser())


def _default_size(args) -> tuple[int, int]:
    """The model's native size, or with --init-image the picture's aspect at that pixel count."""
    native = native_size_or_default(args.model)
    if args.init_image is None:
        return native
    from PIL import Image

    from craftstudio.domain.image_size import size_for_picture

    try:
        with Image.open(args.init_image) as picture:
            return size_for_picture(picture.size, native)
    except Exception:  # an unreadable picture gets its sentence from the engine, before any work
        return native


def _apply_demo_defaults(args) -> None:
    """First run: no --model means the built-in demo model, and then also its backbone, LoRAs and
    prompt for whatever was not given, so a fresh install makes a CRAFT image with no set-up."""
    if args.model:
        return
    from craftstudio.demo import assets
    from craftstudio.domain.generation import LoraRef

    model = assets.demo_model_dir()
    if model is None:
        raise UserError("No model given and the demo model is not installed: pass --model PATH.")
    args.model = str(model)
    loras = {role: assets.demo_lora(role) for role in ("content", "style")}
    if args.content_lora is None and args.style_lora is None and all(loras.values()):
        args.content_lora = LoraRef(str(loras["content"]))
        args.style_lora = LoraRef(str(loras["style"]))
        if args.backbone is None and assets.demo_backbone() is not None:
            args.backbone = str(assets.demo_backbone())
        if not args.prompt:
            args.prompt = assets.demo_prompt()
            # The demo prompt's style weight is tuned to this guidance scale and these curves.
            if args.cfg is None:
                args.cfg = assets.demo_cfg_scale()
            if args.curves is None and args.mode not in PEER_MODES:
                args.curves = assets.demo_curves()


def _infotext_extra(result) -> dict[str, str]:
    """CRAFT settings for the A1111 `parameters` text (the JSON chunk holds everything)."""
    details = result.details
    if not details.get("loras"):
        return {}
    extra = {"CRAFT mode": details["mode"], "CRAFT curves": details.get("curves") or "custom"}
    hashes = [f"{lora['name']}: {lora['sha256'][:12]}" for lora in details["loras"].values()]
    extra["Lora hashes"] = ", ".join(hashes)
    return extra


