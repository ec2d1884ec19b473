"""Our denoising loop against diffusers' stock pipelines, plus progress, previews and cancel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.generation import SCHEDULERS, GenerateRequest
from craftstudio.domain.progress import PreviewEvent, ProgressEvent
from craftstudio.engine import model_cache
from craftstudio.engine.devices import pick_device, pick_dtype
from craftstudio.engine.generation import generate
from craftstudio.engine.schedulers import make_scheduler


def _request(model, **kw) -> GenerateRequest:
    base = dict(model=str(model), prompt="a red cat", width=64, height=64, steps=4, cfg_scale=6.0,
                seed=11, device="cpu")
    base.update(kw)
    return GenerateRequest(**base)


def _stock_image(model_dir, request: GenerateRequest):
    device = pick_device("cpu")
    pipe = model_cache.get_model(model_dir, device, pick_dtype(device)).pipeline
    original = pipe.scheduler
    pipe.scheduler = make_scheduler(request.scheduler, original.config)
    try:
        out = pipe(request.prompt, negative_prompt=request.negative_prompt or None,
                   num_inference_steps=request.steps, guidance_scale=request.cfg_scale,
                   width=request.width, height=request.height,
                   generator=torch.Generator("cpu").manual_seed(request.seed), output_type="np")
    finally:
        pipe.scheduler = original
    return out.images[0]


@pytest.mark.parametrize("family", ["tiny_sd1", "tiny_sdxl"])
@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_loop_matches_stock_pipeline(request, family, scheduler):
    model = request.getfixturevalue(family)
    req = _request(model, scheduler=scheduler, negative_prompt="blue dog")
    ours = np.asarray(generate(req).images[0], dtype=np.float32) / 255.0
    stock = _stock_image(model, req)
    # Both are quantised to 8 bits on the way out; allow one level of rounding difference.
    assert np.abs(ours - stock).max() <= 1.5 / 255.0


def test_same_seed_same_image_and_batch_seeds(tiny_sd1):
    first = generate(_request(tiny_sd1, batch_count=2))
    again = generate(_request(tiny_sd1, seed=12))
    assert first.seeds == [11, 12]
    # One batched UNet call: the same image up to float rounding of another batch size.
    assert _close(first.images[1], again.images[0])
    assert not np.array_equal(np.asarray(first.images[0]), np.asarray(first.images[1]))


def test_cfg_changes_the_image(tiny_sd1):
    low = np.asarray(generate(_request(tiny_sd1, cfg_scale=1.0)).images[0], dtype=np.int16)
    high = np.asarray(generate(_request(tiny_sd1, cfg_scale=9.0)).images[0], dtype=np.int16)
    assert np.abs(low - high).max() > 0


def test_progress_and_previews(tiny_sdxl):
    events = []
    generate(_request(tiny_sdxl, steps=5, preview_every=2), progress=events.append)
    steps = [e.step for e in events if isinstance(e, ProgressEvent) and e.stage == "denoise"]
    previews = [e for e in events if isinstance(e, PreviewEvent)]
    assert steps == [1, 2, 3, 4, 5]
    assert [p.step for p in previews] == [2, 4]
    assert previews[0].image.size == (64, 64)


def test_cancel_raises_and_stops(tiny_sd1):
    token = CancelToken()
    seen = []

    def on_progress(event):
        seen.append(event)
        if isinstance(event, ProgressEvent) and event.stage == "denoise" and event.step == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        generate(_request(tiny_sd1, steps=6), progress=on_progress, cancel=token)
    assert max(e.step for e in seen if e.stage == "denoise") == 2


def _close(a, b, levels: float = 1.5) -> bool:
    return np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)).max() <= levels


@pytest.mark.parametrize("scheduler", ["euler_a", "dpmpp_2m_karras"])
def test_batch_rows_equal_single_seeds(tiny_sdxl, scheduler):
    """A batch runs as one UNet call of 2N rows; image i still equals seed + i generated alone
    (ancestral samplers draw each row's step noise from that image's own generator)."""
    batch = generate(_request(tiny_sdxl, scheduler=scheduler, batch_count=3))
    for i in range(3):
        alone = generate(_request(tiny_sdxl, scheduler=scheduler, seed=11 + i))
        assert _close(batch.images[i], alone.images[0])
    assert not _close(batch.images[0], batch.images[1], 0)


def test_out_of_memory_halves_the_chunk(tiny_sd1, monkeypatch):
    from craftstudio.engine import generation

    sizes = []
    real = generation._denoise_chunk

    def tight(model, unet, request, run, seeds, *args):
        sizes.append(len(seeds))
        if len(seeds) > 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, unet, request, run, seeds, *args)

    monkeypatch.setattr(generation, "_denoise_chunk", tight)
    result = generate(_request(tiny_sd1, batch_count=3))
    assert sizes == [3, 1, 1, 1] or sizes[:2] == [3, 1]
    assert len(result.images) == 3
    monkeypatch.undo()
    again = generate(_request(tiny_sd1, seed=13))
    assert _close(result.images[2], again.images[0])


def test_out_of_memory_suggests_low_vram(tiny_sd1, monkeypatch):
    from craftstudio.domain.errors import OutOfMemory
    from craftstudio.engine import generation

    def oom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(generation, "_denoise_chunk", oom)
    with pytest.raises(OutOfMemory, match="low-VRAM mode"):
        generate(_request(tiny_sd1))
    with pytest.raises(OutOfMemory) as info:
        generate(_request(tiny_sd1, low_vram=True))
    assert "low-VRAM" not in str(info.value)


def test_low_vram_mode_gives_the_same_image(tiny_sd1):
    """Up to the VAE's tile size (32 px for the tiny model, 512/1024 for SD1.5/SDXL) low-VRAM
    mode draws the same image; above it the decoder works in tiles."""
    size = dict(width=32, height=32, batch_count=2)
    normal = generate(_request(tiny_sd1, **size))
    low = generate(_request(tiny_sd1, low_vram=True, **size))
    for a, b in zip(normal.images, low.images, strict=True):
        assert _close(a, b)
    model = model_cache.get_model(tiny_sd1, pick_device("cpu"), torch.float32, low_vram=True)
    assert model.vae.use_tiling
