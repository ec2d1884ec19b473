"""Rank-FT math: rank schedule, orthonormal Q, the projection hooks, the merge, learning."""

from __future__ import annotations

import copy

import pytest
import torch

from craftstudio.engine.backbone import apply_backbone
from craftstudio.engine.loader import load_model
from craftstudio.engine.routing import attention_modules
from craftstudio.engine.training.backbone_training import RankFtStep, make_optimizer, preservation_loss
from craftstudio.engine.training.denoising import (
    DenoisingSetup,
    LatentCache,
    TextConditioning,
    draw_batch,
    make_noise_scheduler,
    predict,
    step_generator,
)
from craftstudio.engine.training.losses import make_denoising_loss, orthogonality_penalty
from craftstudio.engine.training.precision import resolve_precision
from craftstudio.engine.training.rank_ft import (
    CONTENT,
    STYLE,
    Projection,
    ProjectionBases,
    cholesky_qr2,
    clamp_rank,
    householder_q,
    layer_specs,
    minor_directions,
    scheduled_rank,
)
from tests.engine.training.conftest import unet_out

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def sd1(tiny_sd1):
    return load_model(tiny_sd1, CPU, torch.float32)


def test_schedule_falls_linearly_with_depth_and_is_clamped(sd1):
    assert [scheduled_rank(depth, 5, 128, 4) for depth in range(5)] == [128, 97, 66, 35, 4]
    assert scheduled_rank(0, 1, 64, 4) == 64
    assert clamp_rank(200, 320, 320) == 160 and clamp_rank(128, 768, 64) == 64 and clamp_rank(0, 8, 8) == 1
    specs = layer_specs(sd1.unet, 12, 2)
    attentions = attention_modules(sd1.unet)
    assert len(specs) == 4 * len(attentions)
    for i in range(0, len(specs), 4):  # the four projections of one attention share l and r
        group = specs[i:i + 4]
        assert len({s.depth for s in group}) == 1 and group[0].name.startswith(attentions[group[0].depth])
    depths = [s.depth for s in specs]
    assert depths == sorted(depths) and depths[0] == 0 and depths[-1] == len(attentions) - 1
    for spec in specs:
        assert spec.rank == clamp_rank(scheduled_rank(spec.depth, len(attentions), 12, 2), spec.d_in, spec.d_out)
        assert 2 * spec.rank <= spec.d_in
    unclamped = layer_specs(sd1.unet, 4, 2)
    assert unclamped[0].rank == 4 and unclamped[-1].rank == 2
    assert all(a.rank >= b.rank for a, b in zip(unclamped, unclamped[1:], strict=False))


@pytest.mark.parametrize("orthonormalize", [householder_q, cholesky_qr2])
def test_q_is_orthonormal_and_spans_the_basis(orthonormalize):
    b = torch.randn(6, 40, 7, dtype=torch.float64)
    q = orthonormalize(b)
    assert torch.allclose(q.mT @ q, torch.eye(7, dtype=torch.float64).expand(6, 7, 7), atol=1e-10)
    # Same column space as B: projecting B onto span(Q) gives B back.
    assert torch.allclose(q @ (q.mT @ b), b, atol=1e-9)


def test_batched_orthonormalisation_equals_per_layer_qr(sd1):
    bases = ProjectionBases(layer_specs(sd1.unet, 4, 2), seed=1, device=CPU)
    per_layer = bases.per_layer(bases.orthonormal(CONTENT))
    for name, (key, i) in bases.slot.items():
        q_ref = householder_q(bases.content[key][i].detach())
        q = per_layer[name].detach()
        assert torch.allclose(q @ q.T, q_ref @ q_ref.T, atol=1e-5)



def test_minor_init_starts_on_the_least_used_directions_with_disjoint_content_and_style(sd1):
    specs = layer_specs(sd1.unet, 4, 2)
    weights = {s.name: sd1.unet.get_submodule(s.name).weight for s in specs}
    minor = ProjectionBases(specs, seed=0, device=CPU, init="minor", weights=weights)
    random = ProjectionBases(specs, seed=0, device=CPU, init="random")
    q_c, q_s = minor.orthonormal(CONTENT), minor.orthonormal(STYLE)
    assert float(orthogonality_penalty((q_c[k], q_s[k]) for k in q_c)) < 1e-10
    merged_minor, merged_random = minor.merged(), random.merged()
    for spec in specs:
        w = weights[spec.name].detach().double()
        singular = torch.linalg.svdvals(w)
        # Eckart–Young: no 2r-dimensional input subspace carries less of W0 than the minor one.
        least = torch.cat([singular, singular.new_zeros(max(0, spec.d_in - len(singular)))]).sort().values
        removed = (w @ merged_minor[spec.name].double()).square().sum()
        assert torch.isclose(removed, least[:2 * spec.rank].square().sum(), rtol=1e-4, atol=1e-8)
        assert removed <= (w @ merged_random[spec.name].double()).square().sum() + 1e-9
    with pytest.raises(ValueError, match="weights"):
        ProjectionBases(specs, seed=0, device=CPU, init="minor")
    with pytest.raises(ValueError, match="unknown basis initialisation 'svd'"):
        ProjectionBases(specs, seed=0, device=CPU, init="svd")


def test_minor_directions_are_sorted_smallest_first():
    w = torch.diag(torch.tensor([5.0, 1.0, 3.0, 2.0]))
    first = minor_directions([w], 2)[0]
    assert torch.allclose(first.abs(), torch.eye(4)[:, [1, 3]])


def test_projection_hooks_equal_projected_weights_without_touching_w0(sd1):
    unet = sd1.unet
    bases = ProjectionBases(layer_specs(unet, 4, 2), seed=2, device=CPU)
    q = {k: v.detach() for k, v in bases.per_layer(bases.orthonormal(STYLE)).items()}
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    projection = Projection(unet, list(q))
    with projection.installed():
        projection.set_bases(q)
        hooked = unet_out(unet, 500)
    assert all(torch.equal(before[k], v) for k, v in unet.state_dict().items())  # W0 never changed
    assert torch.equal(unet_out(unet, 500), unet_out(unet, 500))  # hooks removed: plain model again
    reference = copy.deepcopy(unet)
    apply_backbone(reference, q)
    assert torch.allclose(hooked, unet_out(reference, 500), atol=1e-5)


def test_merged_basis_is_removed_from_every_layer(sd1):
    unet = copy.deepcopy(sd1.unet)
    specs = layer_specs(unet, 4, 2)
    bases = ProjectionBases(specs, seed=3, device=CPU)
    merged = bases.merged()
    w0 = {s.name: unet.get_submodule(s.name).weight.detach().double().clone() for s in specs}
    apply_backbone(unet, merged)
    square = 0
    for spec in specs:
        q = merged[spec.name].double()
        assert q.shape == (spec.d_in, 2 * spec.rank)
        assert torch.allclose(q.T @ q, torch.eye(2 * spec.rank, dtype=torch.float64), atol=1e-6)
        w = unet.get_submodule(spec.name).weight.detach().double()
        assert (w @ q).abs().max() < 1e-5  # W·Q_merged = 0
        if spec.d_in == spec.d_out:  # where it fits, the rank drops by exactly the merged rank
            square += 1
            before = torch.linalg.matrix_rank(w0[spec.name])
            assert before == spec.d_in
            assert torch.linalg.matrix_rank(w, atol=1e-6) == before - 2 * spec.rank
    assert square > 0


def _setup(model, precision="no"):
    unet = copy.deepcopy(model.unet).requires_grad_(False)
    scheduler = make_noise_scheduler(model.pipeline.scheduler.config)
    setup = DenoisingSetup(unet, scheduler, resolve_precision(precision, CPU), make_denoising_loss("mse", scheduler))
    gen = torch.Generator().manual_seed(4)
    cache = LatentCache.constant(torch.randn(2, 4, 8, 8, generator=gen))
    text = TextConditioning(torch.randn(1, 77, unet.config.cross_attention_dim, generator=gen))
    return setup, cache, text


def test_loss_falls_over_a_few_steps_on_a_fixed_batch(sd1):
    setup, cache, text = _setup(sd1)
    specs = layer_specs(setup.unet, 4, 2)
    bases = ProjectionBases(specs, seed=5, device=CPU)
    projection = Projection(setup.unet, [s.name for s in specs])
    step = RankFtStep(setup, bases, projection, make_optimizer(bases.parameters(), 5e-2), ortho_weight=1.0)
    batch = draw_batch(cache, [0, 1], step_generator(0, 0), 1000, CPU)
    with projection.installed():
        losses = [{k: float(v) for k, v in step(CONTENT, batch, text).items()} for _ in range(6)]
    assert losses[-1]["loss"] < losses[0]["loss"]
    assert losses[-1]["ortho"] < losses[0]["ortho"]
    assert all(abs(t["loss"] - t["denoise"] - t["ortho"]) < 1e-5 for t in losses)  # each term is logged


def test_content_steps_train_content_bases_and_penalty_reaches_both(sd1):
    setup, cache, text = _setup(sd1)
    specs = layer_specs(setup.unet, 4, 2)
    bases = ProjectionBases(specs, seed=6, device=CPU)
    projection = Projection(setup.unet, [s.name for s in specs])
    batch = draw_batch(cache, [0], step_generator(0, 1), 1000, CPU)
    with projection.installed():
        q_c, q_s = bases.orthonormal(CONTENT), bases.orthonormal(STYLE)
        projection.set_bases(bases.per_layer(q_c))
        from craftstudio.engine.training.denoising import denoising_loss

        denoising_loss(setup, batch, text).backward(retain_graph=True)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in bases.content.values())
    assert all(p.grad is None for p in bases.style.values())  # the denoising loss never trains style here
    orthogonality_penalty((q_c[k], q_s[k]) for k in q_c).backward()
    assert all(p.grad is not None for p in bases.style.values())


def test_gradient_checkpointing_gives_the_same_gradients(sd1):
    grads = []
    for checkpointing in (False, True):
        setup, cache, text = _setup(sd1)
        if checkpointing:
            setup.unet.enable_gradient_checkpointing()
        setup.unet.train()
        specs = layer_specs(setup.unet, 4, 2)
        bases = ProjectionBases(specs, seed=7, device=CPU)
        projection = Projection(setup.unet, [s.name for s in specs])
        step = RankFtStep(setup, bases, projection, make_optimizer(bases.parameters(), 1e-2), 1.0)
        with projection.installed():
            step(STYLE, draw_batch(cache, [1], step_generator(0, 2), 1000, CPU), text)
        grads.append({k: v.detach().clone() for k, v in bases.named_parameters()})
    assert all(torch.allclose(grads[0][k], grads[1][k], atol=1e-6) for k in grads[0])


def test_preservation_loss_is_the_gap_to_w0_and_keeps_the_bases_active(sd1):
    setup, cache, text = _setup(sd1)
    specs = layer_specs(setup.unet, 4, 2)
    bases = ProjectionBases(specs, seed=8, device=CPU)
    projection = Projection(setup.unet, [s.name for s in specs])
    batch = draw_batch(cache, [0, 1], step_generator(0, 3), 1000, CPU)
    with projection.installed(), torch.no_grad():
        w0 = predict(setup, batch, text)
        q = bases.per_layer(bases.orthonormal(CONTENT))
        projection.set_bases(q)
        projected = predict(setup, batch, text)
        kept = preservation_loss(setup, projection, batch, text)
        assert set(projection.active) == set(q)  # the teacher pass put the bases back
        assert float(kept) > 0 and torch.allclose(kept, (projected - w0).pow(2).mean())
        projection.set_bases(None)
        assert float(preservation_loss(setup, projection, batch, text)) == 0  # no bases: W_init = W0


def test_the_preservation_weight_pulls_w_init_toward_w0(sd1):
    gaps = {}
    for weight in (0.0, 1e3):
        setup, cache, text = _setup(sd1)
        specs = layer_specs(setup.unet, 4, 2)
        bases = ProjectionBases(specs, seed=9, device=CPU)  # random bases: W_init starts far from W0
        projection = Projection(setup.unet, [s.name for s in specs])
        step = RankFtStep(setup, bases, projection, make_optimizer(bases.parameters(), 5e-2), 1.0, weight)
        batch = draw_batch(cache, [0, 1], step_generator(0, 4), 1000, CPU)
        keep = (draw_batch(cache, [0, 1], step_generator(0, 5), 1000, CPU), text)
        with projection.installed():
            terms = [{k: float(v) for k, v in step(CONTENT, batch, text, keep).items()} for _ in range(8)]
        assert all(abs(t["loss"] - t["denoise"] - t["ortho"] - weight * t["keep"]) < 1e-4 * max(1, t["loss"])
                   for t in terms)  # every term is logged
        gaps[weight] = (terms[0]["keep"], terms[-1]["keep"])
    assert gaps[0.0][0] == gaps[1e3][0]  # same start
    assert gaps[1e3][1] < 0.5 * gaps[1e3][0] and gaps[1e3][1] < 0.5 * gaps[0.0][1]


def test_staged_bases_train_what_the_plain_step_trains_through_fixed_addresses(sd1):
    """The staged projection (for CUDA graphs) hands the UNet the same tensors every step and
    splits the backward at them; the bases get the plain step's gradients, preservation term and
    orthogonality penalty included."""
    trained, addresses = [], []
    for staged in (False, True):
        setup, cache, text = _setup(sd1)
        specs = layer_specs(setup.unet, 4, 2)
        bases = ProjectionBases(specs, seed=9, device=CPU)
        projection = Projection(setup.unet, [s.name for s in specs], staged=staged)
        step = RankFtStep(setup, bases, projection, make_optimizer(bases.parameters(), 1e-2), 1.0, keep_weight=10.0)
        keep = (draw_batch(cache, [1], step_generator(1, 0), 1000, CPU), text)
        seen = []
        with projection.installed():
            for i, role in enumerate((CONTENT, STYLE, CONTENT)):
                step(role, draw_batch(cache, [0, 1], step_generator(0, i), 1000, CPU), text, keep)
                seen.append({name: tuple(t.data_ptr() for t in pair) for name, pair in projection._stage.items()})
        trained.append({k: v.detach().clone() for k, v in bases.named_parameters()})
        addresses.append(seen)
    assert trained[0].keys() == trained[1].keys()
    for key, plain in trained[0].items():
        assert not torch.equal(plain, ProjectionBases(layer_specs(_setup(sd1)[0].unet, 4, 2), seed=9,
                                                      device=CPU).state_dict()[key])  # the bases moved
        assert torch.allclose(plain, trained[1][key], atol=1e-6), key
    assert addresses[0] == [{}, {}, {}]  # the plain projection stages nothing
    assert addresses[1][0] and addresses[1][0] == addresses[1][1] == addresses[1][2]
