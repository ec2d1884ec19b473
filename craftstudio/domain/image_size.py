"""The generation size for an artist's own picture.

*Decision:* when a picture starts the run and no size is given, the size follows the picture: its
aspect ratio at the model's native pixel count (so a phone photo on SD1.5 becomes about 512², a
demo picture stays 64²), each side rounded to a multiple of 8. The picture is then scaled to
cover that size and centre-cropped (engine/init_image.py), which crops at most a few pixels.
"""

from __future__ import annotations

import math

from craftstudio.domain.limits import MAX_SIDE


def size_for_picture(picture: tuple[int, int], native: tuple[int, int]) -> tuple[int, int]:
    """(width, height) for a picture of size `picture` on a model of native size `native`."""
    width, height = picture
    if width <= 0 or height <= 0:
        return native
    scale = math.sqrt(native[0] * native[1] / (width * height))
    return _side(width * scale), _side(height * scale)


def _side(value: float) -> int:
    return min(MAX_SIDE, max(8, int(round(value / 8.0)) * 8))
