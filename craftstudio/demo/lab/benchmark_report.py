"""A benchmark result as tables (Table 1, the ablation rows, per pair), JSON, a contact sheet and
the printed report (benchmark.py makes the result; `merge` joins runs first)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from craftstudio.demo.lab.benchmark import CONTENT, STYLE
from craftstudio.demo.lab.benchmark_peers import BASE

# Tables ------------------------------------------------------------------------------------------------

def _cell(summary: dict[str, Any], method: str, metric: str) -> str:
    value = summary[method][metric]
    return f"{value['mean']:.3f} ± {value['std']:.3f}"


COST = "Cost / step (× base)"


def _cost(result: dict[str, Any], method: str) -> str:
    """The method's seconds per image and step relative to the base model's ("—" if not timed)."""
    relative = result.get("cost", {}).get(method, {}).get("relative")
    return "—" if relative is None else f"{relative:.2f}"


def table1(result: dict[str, Any]) -> list[list[str]]:
    """Header + rows: the base model, direct merge, the peers, full CRAFT (and its γ_s rows), mean ±
    std over pairs, with each method's cost per step relative to the base model."""
    header = ["Method", "Content acc", "Style acc", "Combination (both)", "Content cos", "Style cos",
              "Leak: ref style", "Leak: ref shape", COST]
    metrics = ("content_acc", "style_acc", "both_acc", "content_cos", "style_cos", "content_leak", "style_leak")
    rows = [header]
    for label in result["aliases"]:
        method = result["aliases"][label]
        rows.append([label, *(_cell(result["summary"], method, m) for m in metrics), _cost(result, method)])
    return rows


def ablation_table(result: dict[str, Any]) -> list[list[str]]:
    """Header + the 8 rows with ✓/✗ switch columns."""
    header = ["Backbone", "Routing", "Asym. CFG + gates", "Content acc", "Style acc", "Combination (both)",
              "Content cos", "Style cos", "Leak: ref style", "Leak: ref shape", COST]
    metrics = ("content_acc", "style_acc", "both_acc", "content_cos", "style_cos", "content_leak", "style_leak")
    rows = [header]
    for row in result["rows"]:
        marks = ["✓" if row[k] else "✗" for k in ("backbone", "routing", "asymmetric_cfg")]
        rows.append([*marks, *(_cell(result["summary"], row["name"], m) for m in metrics),
                     _cost(result, row["name"])])
    return rows


def per_pair_table(result: dict[str, Any]) -> list[list[str]]:
    """Header + one row per method: each pair's combination (content / style) accuracy, since the
    std over pairs is often as large as the differences between methods."""
    names = {method: alias for alias, method in result["aliases"].items()}
    header = ["Method", *(f"{entry['content']}:{entry['style']}" for entry in result["pairs"])]
    rows = [header]
    for method in result["summary"]:
        cells = [f"{m['both_acc']:.2f} ({m['content_acc']:.2f} / {m['style_acc']:.2f})"
                 for m in (entry["methods"][method] for entry in result["pairs"])]
        rows.append([names.get(method, method), *cells])
    return rows


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join(" --- " for _ in rows[0]) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def json_ready(result: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in result.items() if not k.startswith("_")}
    data["tables"] = {"table1": table1(result), "ablation": ablation_table(result),
                      "per_pair": per_pair_table(result)}
    return data


def write_json(result: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_ready(result), indent=1, ensure_ascii=False))
    return path


# Contact sheet -----------------------------------------------------------------------------------------

def contact_sheet(result: dict[str, Any], samples_per_row: int = 6, scale: int = 2):
    """Per pair: a row with the references, then one row per method (rows = methods)."""
    from PIL import Image, ImageDraw

    pairs = result["pairs"]
    label_w, tile = 230, 64 * scale
    n = min(samples_per_row, result["config"]["images"])
    cols = max(n, 2 * min(3, result["config"]["refs"]))
    names = list(result["summary"])  # every method, in generation order
    rows_per_pair = 1 + len(names)
    sheet = Image.new("RGB", (label_w + tile * cols, tile * rows_per_pair * len(pairs)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    concepts = result["_concepts"]
    for p, entry in enumerate(pairs):
        top = p * rows_per_pair * tile
        c, s = concepts[(CONTENT, entry["content"])], concepts[(STYLE, entry["style"])]
        draw.text((4, top + 4), f"{entry['content']}:{entry['style']}\nreferences:\n"
                  f"{c.trigger} ({c.name} in {c.other})\n{s.trigger} ({s.name} on {s.other})", fill=(0, 0, 0))
        refs = result["_references"][(CONTENT, entry["content"])][:3] + result["_references"][(STYLE, entry["style"])][:3]
        for i, image in enumerate(refs):
            sheet.paste(image.resize((tile, tile), Image.NEAREST), (label_w + i * tile, top))
        labels = {method: alias + "\n" for alias, method in result["aliases"].items() if alias != method}
        for r, name in enumerate(names):
            y = top + (r + 1) * tile
            stats = entry["methods"][name]
            text = f"{labels.get(name, '')}{name.replace(',', chr(10))}\nboth {stats['both_acc']:.2f}"
            draw.text((4, y + 4), text.replace("γ", "gamma"), fill=(0, 0, 0))  # the default font lacks γ
            for i, image in enumerate(result["_samples"][(p, name)][:n]):
                sheet.paste(image.resize((tile, tile), Image.NEAREST), (label_w + i * tile, y))
        draw.line([(0, top), (sheet.width, top)], fill=(200, 0, 0), width=2)
    return sheet


def report_text(result: dict[str, Any]) -> str:
    timing = result["timing"]
    cfg = result["config"]
    seeds = cfg.get("ref_seeds") or [cfg.get("seed", 0)]
    base = result.get("cost", {}).get(BASE)
    zipped = result.get("ziplora_merge")
    notes = []
    if base:
        notes.append(f"{COST}: seconds per image and sampler step over the base model's (no LoRA, standard CFG, "
                     f"{base['seconds_per_step'] * 1000:.2f} ms) on the same pair, median over pairs and seeds, "
                     f"measured in the same run on {result.get('machine', {}).get('device', cfg.get('device'))}.")
    if zipped:
        notes.append(f"ZipLoRA's merge ({zipped['steps']} steps, once per pair and seed) took "
                     f"{zipped['seconds_mean']:.1f} s on average over {zipped['merges']} merge(s); not in its cost "
                     "column, which times generation only.")
    return "\n".join([
        f"Pairs: {', '.join(f'{c}:{s}' for c, s in cfg['pairs'])}; {cfg['images']} images per pair and method; "
        f"{cfg['refs']} reference image(s) per concept; reference seed(s) {', '.join(map(str, seeds))}"
        f"{' (each pair averaged over them)' if len(seeds) > 1 else ''}; mean ± std over pairs.",
        "", "Table 1 (direct merge = every switch off; CRAFT = every switch on; the peers on the direct merge's "
        "LoRAs, B-LoRA on its own)", "",
        markdown(table1(result)), "", *notes, *([""] if notes else []),
        f"Ablation (gates and guidance follow the {cfg.get('curves', 'paper')} curves when asymmetric CFG is on)", "",
        markdown(ablation_table(result)), "",
        "Per pair: combination (content / style) accuracy", "", markdown(per_pair_table(result)), "",
        f"Time: training {timing['training_s']:.0f} s, generation {timing['generation_s']:.0f} s "
        f"({timing['seconds_per_image']:.2f} s/image), total {timing['total_s']:.0f} s.",
    ])
