"""Feedback text of the Generate page: a running job's progress and the prompt's markers, in words.

`step_text` is the progress bar's `step 3/20 · 4.1 it/s · 4 s left`: the speed is counted from
the first denoising step seen (so loading the model does not skew it) and written as seconds per
step on slow machines, where "0.2 it/s" reads worse than "4.9 s/it". `describe_markers` gives the
γ each LoRA gets from the prompt's `<c>`/`<s>` markers (DESIGN.md §1: no markers = γ 1 for
both); `markers_note` names a loaded LoRA that the markers switch off.
"""

from __future__ import annotations

from craftstudio.domain.markers import ParsedPrompt
from craftstudio.domain.progress import ProgressEvent


def step_text(event: ProgressEvent, count: int, start: tuple[float, int], now: float) -> str:
    """`event` (a denoise step of image `event.image_index` of `count`) in words; `start` is the
    (time, steps done) of the first step seen, `now` the time of this one."""
    done = event.image_index * event.total + event.step
    parts = [f"step {event.step}/{event.total}"]
    if count > 1:
        parts[0] = f"image {event.image_index + 1}/{count} · " + parts[0]
    if event.message:  # a second pass (hires) counts its own steps
        parts[0] = f"{event.message} · " + parts[0]
    seconds, steps = now - start[0], done - start[1]
    if seconds > 0 and steps > 0:
        rate = steps / seconds
        parts += [rate_text(rate), f"{duration_text((count * event.total - done) / rate)} left"]
    return " · ".join(parts)


def describe_markers(parsed: ParsedPrompt) -> str:
    """The γ values a prompt gives the LoRAs, in words (README: no markers = γ 1 for both)."""
    if not parsed.text:
        return ""
    if not parsed.has_markers:
        return f"No <c>/<s> markers: content γ {_gamma(1.0)} · style γ {_gamma(1.0)}"
    return f"content γ {_gamma(parsed.gamma_content)} · style γ {_gamma(parsed.gamma_style)}"


def markers_note(parsed: ParsedPrompt, content_lora: str, style_lora: str) -> str:
    """A loaded LoRA that the prompt's markers switch off (γ 0), in words; "" otherwise."""
    if not parsed.has_markers:
        return ""
    off = [f"the {role} LoRA is off (no <{role[0]}> in the prompt)"
           for role, path, gamma in (("content", content_lora, parsed.gamma_content),
                                     ("style", style_lora, parsed.gamma_style))
           if path.strip() and gamma == 0]
    text = "; ".join(off)
    return text[:1].upper() + text[1:] + "." if off else ""


def rate_text(steps_per_second: float) -> str:
    if steps_per_second >= 1:
        return f"{steps_per_second:.1f} it/s"
    return f"{1 / steps_per_second:.1f} s/it"  # slow machines: seconds per step reads better


def duration_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _gamma(value: float) -> str:
    # One decimal at least ("1.0", "0.8"), more only when the user typed more ("0.75").
    return f"{value:.1f}" if round(value, 1) == value else f"{value:g}"
