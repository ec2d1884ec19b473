"""The size a picture is generated at when it starts the run."""

from craftstudio.domain.image_size import size_for_picture


def test_phone_photo_on_sd15_keeps_its_aspect_at_the_native_pixel_count():
    width, height = size_for_picture((4032, 3024), (512, 512))
    assert (width, height) == (592, 440)
    assert abs(width * height - 512 * 512) / (512 * 512) < 0.01
    assert width % 8 == 0 and height % 8 == 0


def test_native_sized_picture_keeps_its_size():
    assert size_for_picture((64, 64), (64, 64)) == (64, 64)
    assert size_for_picture((1024, 1024), (1024, 1024)) == (1024, 1024)


def test_extreme_aspect_stays_within_limits():
    assert size_for_picture((100000, 10), (1024, 1024)) == (4096, 8)
    assert size_for_picture((0, 10), (512, 512)) == (512, 512)
