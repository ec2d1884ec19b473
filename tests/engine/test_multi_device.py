"""A batch split over several devices makes the pictures one device makes, in seed order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.domain.errors import RequestError
from craftstudio.domain.generation import GenerateRequest
from craftstudio.engine.generation import generate
from craftstudio.engine.multi_device import generate_on_devices, parse_devices, shares


def _request(model, **kw) -> GenerateRequest:
    base = dict(model=str(model), prompt="a red cat", width=64, height=64, steps=4, cfg_scale=6.0,
                seed=11, device="cpu", batch_count=3)
    base.update(kw)
    return GenerateRequest(**base)


def _close(a, b, levels: float = 1.5) -> bool:
    """Equal within one 8-bit level: batched UNet calls of another size round differently."""
    return np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).max() <= levels


def test_two_workers_make_the_one_device_pictures_in_seed_order(tiny_sd1):
    one = generate(_request(tiny_sd1))
    events = []
    two = generate_on_devices(_request(tiny_sd1), "cpu,cpu", progress=events.append)
    assert two.seeds == one.seeds == [11, 12, 13]
    assert all(_close(a, b) for a, b in zip(one.images, two.images, strict=True))
    assert not _close(two.images[0], two.images[1], 0)  # each seed its own picture
    assert two.details["devices"] == [{"device": "cpu", "seeds": [11, 12]}, {"device": "cpu", "seeds": [13]}]
    assert two.device == "cpu,cpu" and events  # the first device reports progress
    assert two.request == one.request  # recorded for the whole batch, as one device records it


def test_no_devices_is_the_ordinary_generation(tiny_sd1):
    plain = generate_on_devices(_request(tiny_sd1, batch_count=1), None)
    assert plain.device == "cpu" and "devices" not in plain.details


def test_a_cancel_stops_every_device(tiny_sd1):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        generate_on_devices(_request(tiny_sd1), "cpu,cpu", cancel=token)


def test_shares_are_contiguous_and_even():
    assert shares(5, 2) == [(0, 3), (3, 2)]
    assert shares(1, 3) == [(0, 1), (1, 0), (1, 0)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusals of a machine without CUDA")
@pytest.mark.parametrize("text, expected", [
    ("cuda:0,cuda:1", "There is no cuda:0 here (no CUDA GPU)"),
    ("tpu:0", "Unknown device 'tpu:0'"),
    ("cuda:x", "cuda:x is not a device"),
    (" , ", "No devices are given"),
])
def test_bad_device_lists_are_refused_in_one_sentence(text, expected):
    with pytest.raises(RequestError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        parse_devices(text)


def test_models_load_before_the_devices_sample_never_while(tiny_sd1, monkeypatch):
    """Loading patches torch for the whole process, so it must not overlap another device's
    sampling: every load happens first, in the caller's thread, one model per device."""
    import threading

    from craftstudio.engine import model_cache

    model_cache.clear()
    loads = []
    real = model_cache.load_model

    def load(*args, **kwargs):
        loads.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(model_cache, "load_model", load)
    generate_on_devices(_request(tiny_sd1, seed=40), "cpu,cpu")
    assert loads == [True, True]
