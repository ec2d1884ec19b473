"""The command line equivalent to a training request: `python -m craftstudio train lora|backbone …`.

The Train page's "Copy as command" puts this on the clipboard. It names every setting that
differs from the command's default (the request dataclasses' defaults are the CLI's), so the
command builds the same request and trains the same weights. Floats are written with `repr`,
which reads back to the same number. Quoted for a POSIX shell (`shlex`).
"""

from __future__ import annotations

import dataclasses
import shlex

from craftstudio.domain.training import BackboneTrainRequest, LoraTrainRequest, TrainRequest

PROGRAM = ("python", "-m", "craftstudio", "train")

# request field → (flag, how it is written); bool flags are written when the value differs from
# the default (`--no-gradient-checkpointing` turns a default True off).
_COMMON = (
    ("steps", "--steps"), ("learning_rate", "--lr"), ("batch_size", "--batch"), ("resolution", "--resolution"),
    ("loss", "--loss"), ("seed", "--seed"), ("device", "--device"), ("mixed_precision", "--precision"),
    ("checkpoint_every", "--checkpoint-every"), ("title", "--title"),
)
_LORA = (
    ("backbone", "--backbone"), ("caption", "--caption"), ("rank", "--rank"), ("alpha", "--alpha"),
    ("sample_every", "--sample-every"), ("sample_prompt", "--sample-prompt"), ("sample_steps", "--sample-steps"),
    ("routing_preset", "--routing"), ("uncond_weight", "--uncond-weight"),
)
_BACKBONE = (
    ("r_max", "--r-max"), ("r_min", "--r-min"), ("init", "--init"), ("sigma", "--sigma"),
    ("ortho_weight", "--lambda"), ("keep_dir", "--keep-dir"), ("keep_weight", "--keep-weight"),
    ("max_content", "--max-content"), ("max_style", "--max-style"),
    ("content_caption", "--content-caption"), ("style_caption", "--style-caption"),
)
_SWITCHES = (("gradient_checkpointing", "--no-gradient-checkpointing"), ("fast", "--fast"), ("adam_8bit", "--adam-8bit"),
             ("upscale", "--upscale"), ("overwrite", "--overwrite"))


def _defaults(cls: type) -> dict[str, object]:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def _text(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def command_args(request: TrainRequest, *, resume: bool = False) -> list[str]:
    """The argument list (without the program) that makes the CLI build `request`."""
    defaults = _defaults(type(request))
    if isinstance(request, LoraTrainRequest):
        args = ["lora", "--role", request.role, "--model", request.model, "--images", *request.images,
                "--trigger", request.trigger, "--out", request.out]
        options = _LORA + _COMMON
    else:
        assert isinstance(request, BackboneTrainRequest)
        args = ["backbone", "--model", request.model, "--content-dir", request.content_dir,
                "--style-dir", request.style_dir, "--out", request.out]
        options = _BACKBONE + _COMMON
    for name, flag in options:
        value = getattr(request, name)
        if value != defaults.get(name) and value not in (None, ""):
            args += [flag, _text(value)]
    for name, flag in _SWITCHES:
        if hasattr(request, name) and getattr(request, name) != defaults.get(name):
            args.append(flag)
    if request.gpus:  # one process per GPU unless the count says otherwise
        args += ["--gpus", ",".join(str(g) for g in request.gpus)]
    if request.num_processes != (len(request.gpus) or 1):
        args += ["--num-processes", str(request.num_processes)]
    if isinstance(request, LoraTrainRequest):
        for block, role in sorted((request.routing_overrides or {}).items()):
            args += ["--route", f"{block}={role}"]
    if resume:
        args.append("--resume")
    return args


def command_line(request: TrainRequest, *, resume: bool = False) -> str:
    """The whole command as one line for a POSIX shell."""
    return shlex.join([*PROGRAM, *command_args(request, resume=resume)])
