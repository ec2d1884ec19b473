"""Thumbnails: scaled to fit, flattened, cached on disk, decoded on the pool's threads."""

from __future__ import annotations

import threading

from PIL import Image

from craftstudio.workers import thumbnail_loader
from craftstudio.workers.thumbnail_loader import SIZE, ThumbnailLoader, cache_name, make_thumbnail
from tests.kit.library_files import write_png


def test_scaled_to_fit_and_cached(tmp_path):
    source = write_png(tmp_path / "big.png", size=(800, 400))
    width, height, rgb = make_thumbnail(source, tmp_path / "cache")
    assert (width, height) == (SIZE, SIZE // 2) and len(rgb) == width * height * 3
    cached = tmp_path / "cache" / cache_name(source)
    assert cached.is_file()
    cached.write_bytes(b"damaged")  # a damaged cache file is made again
    assert make_thumbnail(source, tmp_path / "cache")[:2] == (width, height)
    assert Image.open(cached).size == (width, height)


def test_a_changed_source_gets_a_new_cache_entry(tmp_path):
    source = write_png(tmp_path / "p.png", (10, 10, 10))
    before = cache_name(source)
    write_png(source, (250, 250, 250), size=(50, 50))
    assert cache_name(source) != before


def test_transparent_previews_are_flattened_and_bad_files_give_none(tmp_path):
    source = tmp_path / "alpha.png"
    Image.new("RGBA", (40, 40), (255, 0, 0, 0)).save(source)
    width, height, rgb = make_thumbnail(source, None)
    assert (width, height) == (40, 40) and rgb[:3] != b"\xff\x00\x00"
    (tmp_path / "bad.png").write_bytes(b"not a png")
    assert make_thumbnail(tmp_path / "bad.png", tmp_path / "cache") is None
    assert make_thumbnail(tmp_path / "gone.png", tmp_path / "cache") is None


def test_loader_decodes_off_the_gui_thread(qtbot, tmp_path, monkeypatch):
    threads = []
    real = thumbnail_loader.make_thumbnail

    def spy(*args, **kwargs):
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(thumbnail_loader, "make_thumbnail", spy)
    loader = ThumbnailLoader(tmp_path / "cache")
    source = write_png(tmp_path / "p.png")
    with qtbot.waitSignal(loader.ready, timeout=5000) as ready:
        loader.request("a", str(source))
        assert loader.is_pending("a")
    key, thumb = ready.args
    assert key == "a" and (thumb.width, thumb.height) == (96, 64) and not loader.is_pending("a")
    assert threads and threading.get_ident() not in threads
    with qtbot.waitSignal(loader.failed, timeout=5000) as failed:
        loader.request("b", str(tmp_path / "missing.png"))
    assert failed.args == ["b"]
    loader.shutdown()
