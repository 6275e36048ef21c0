"""``make bench``: every benchmark as a ratio against a baseline run in the same process, written to
reports/bench.md. Nothing here asserts a speed; the targets are printed beside the ratios.

Each measurement is a median over repeats after warm-up. Absolute seconds depend on the machine and on whatever
else runs on it; the ratios (candidate vs baseline, same process, same inputs) are what the table reports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from common import (
    FINETUNE_SETTINGS,
    PREFIX_SETTINGS,
    interleaved_medians,
    median_seconds,
    prefix_decoders,
    prefix_method,
    random_gpt2,
    random_prompts,
    training_batch,
    training_step,
)
from prefixtune.cluster.plan import load_config
from prefixtune.decoding.beam_cache import BeamSharedCrossAttentionCache
from prefixtune.decoding.beam_search import BeamSettings
from prefixtune.decoding.beam_search_batched import beam_search_batch, mixed_prefix_cache
from prefixtune.decoding.settings import method_decoding
from prefixtune.methods import build_method
from prefixtune.training.seq2seq import generate_kwargs
from prefixtune.training.train import epoch_batches, lm_loss, padding_share

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _row(
    name: str, baseline: str, base_s: float, candidate: str, cand_s: float, target: str, **extra: Any
) -> dict:
    return {
        "name": name,
        "baseline": f"{baseline}: {base_s:.3f} s",
        "candidate": f"{candidate}: {cand_s:.3f} s",
        "ratio": base_s / cand_s,
        "target": target,
        **extra,
    }


def _demo_sized_model() -> torch.nn.Module:
    """The demo's tiny GPT-2 (2 layers, d 128, 1,200 tokens), random weights: speed does not need training."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=1200, n_positions=256, n_layer=2, n_embd=128, n_head=4)
    return GPT2LMHeadModel(config).eval()


def bench_batched_decoding(n_prompts: int, batch: int, repeats: int) -> list[dict]:
    """Random weights: no EOS, so every prompt runs the whole ``max_new_tokens`` (no batch waits for a straggler);
    once per ``decoding.attention`` (eager: the default; sdpa: the switch), the same attention at batch 1."""
    model = _demo_sized_model()
    method = prefix_method(model, 0)
    eos = 0
    settings = BeamSettings(num_beams=5, max_new_tokens=40, min_length=0)
    prompts = sorted(random_prompts(n_prompts, 1200), key=len)

    batch_one, batched_by = prefix_decoders(method, prompts, settings, eos)

    def batched() -> list[list[int]]:
        return batched_by(batch)

    def with_attention(attention: str, fn: Callable[[], list[list[int]]]) -> Callable[[], list[list[int]]]:
        def run() -> list[list[int]]:
            model.set_attn_implementation(attention)
            return fn()

        return run

    fns = {
        (attention, size): with_attention(attention, batch_one if size == 1 else batched)
        for attention in ("eager", "sdpa")
        for size in (1, batch)
    }
    identical = {attention: fns[attention, 1]() == fns[attention, batch]() for attention in ("eager", "sdpa")}
    seconds = interleaved_medians(fns, repeats)
    name = f"GPT-2 PREFIX beam search, {n_prompts} prompts (demo-sized model, CPU)"
    rows = [
        _row(
            f"{name}, {attention} attention",
            f"batch 1 (the authors' loop), {attention}",
            seconds[attention, 1],
            f"batches of {batch}, {attention}",
            seconds[attention, batch],
            "≥ 5× on 2 CPU cores",
            note=f"outputs identical: {identical[attention]}"
            + ("; the decoding default" if attention == "eager" else ""),
        )
        for attention in ("eager", "sdpa")
    ]
    fastest_one = min(("eager", "sdpa"), key=lambda a: seconds[a, 1])
    fastest_batched = min(("eager", "sdpa"), key=lambda a: seconds[a, batch])
    rows.append(
        _row(
            f"{name}, each at its fastest attention",
            f"batch 1, {fastest_one}",
            seconds[fastest_one, 1],
            f"batches of {batch}, {fastest_batched}",
            seconds[fastest_batched, batch],
            "≥ 5× on 2 CPU cores",
            note="the fairest comparison: neither side slowed by the other's attention",
        )
    )
    model.set_attn_implementation("eager")
    # Mixed-prefix batches (§8.2): two tasks' prompts in one batch, against one batch per task
    tasks = [method, prefix_method(model, 1)]
    task_of = [i % 2 for i in range(len(prompts))]

    def per_task() -> dict[int, list[int]]:
        out = {}
        with torch.no_grad():
            for t, task in enumerate(tasks):
                mine = [i for i in range(len(prompts)) if task_of[i] == t]
                for start in range(0, len(mine), batch):
                    chunk = mine[start : start + batch]
                    best = beam_search_batch(model, [prompts[i] for i in chunk], eos, settings,
                                             task.past_key_values(len(chunk)))  # fmt: skip
                    out.update(zip(chunk, best, strict=True))
        return out

    def mixed() -> dict[int, list[int]]:
        out = {}
        with torch.no_grad():
            prefixes = [task.past_key_values(1) for task in tasks]  # each task's prefix computed once
            for start in range(0, len(prompts), batch):
                chunk = list(range(start, min(start + batch, len(prompts))))
                cache, lengths = mixed_prefix_cache([prefixes[task_of[i]] for i in chunk])
                best = beam_search_batch(model, [prompts[i] for i in chunk], eos, settings, cache,
                                         prefix_lengths=lengths)  # fmt: skip
                out.update(zip(chunk, best, strict=True))
        return out

    identical = per_task() == mixed()
    seconds = interleaved_medians({"per task": per_task, "mixed": mixed}, repeats)
    rows.append(
        _row(
            "mixed-prefix batches (2 tasks interleaved)",
            f"per-task batches of ≤ {batch}",
            seconds["per task"],
            f"mixed batches of {batch}",
            seconds["mixed"],
            "≈ 1× (one batch serves every task)",
            note=f"outputs identical: {identical}",
        )
    )
    return rows


def bench_bart_decoding(n_sources: int, batches: tuple[int, ...], repeats: int) -> list[dict]:
    """BART + prefix with the paper's XSUM decoding (``generate``): one source at a time against right-padded
    batches, on a demo-sized BART (random weights: every summary runs to max_length). The baseline is batch 1
    at its faster form, with or without the beams sharing their source's cross-attention keys (see
    ``bart_prefix._beams_share_source``); outputs are compared with batch 1 in transformers' own form."""
    from transformers import BartConfig, BartForConditionalGeneration

    from prefixtune.methods.bart_prefix import BartPrefixTuning

    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=2000, d_model=128, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=512, decoder_ffn_dim=512, max_position_embeddings=512,
    )  # fmt: skip
    method = BartPrefixTuning(
        BartForConditionalGeneration(config).eval(), {"prefix_length": 10, "mid_dim": 128}
    )
    method.eval()
    generator = torch.Generator().manual_seed(0)
    lengths = sorted(torch.randint(60, 301, (n_sources,), generator=generator).tolist())
    sources = [[0, *torch.randint(4, 2000, (k - 2,), generator=generator).tolist(), 2] for k in lengths]
    # the paper config's XSUM decoding, as the decode stage passes it (BART's ids: <s> 0, <pad> 1, </s> 2)
    decoding = method_decoding(
        load_config(ROOT / "config" / "config.yaml")["decoding_by_dataset"]["xsum"], "prefix"
    )
    kwargs = generate_kwargs(decoding, SimpleNamespace(bos_token_id=0, pad_token_id=1, eos_token_id=2))

    def run(size: int, share: bool = True) -> list[list[int]]:
        out: list[list[int]] = []
        for start in range(0, n_sources, size):
            chunk = sources[start : start + size]
            width = max(len(s) for s in chunk)
            ids = torch.tensor([s + [1] * (width - len(s)) for s in chunk])
            cache = BeamSharedCrossAttentionCache() if share else None
            sequences = method.generate(
                ids, ids.ne(1).long(), beams_share_source=share, past_key_values=cache, **kwargs
            )
            out += [[t for t in row.tolist() if t != 1] for row in sequences]
        return out

    expected = run(1, share=False)
    identical = {size: run(size) == expected for size in batches}
    fns = {(share, 1): lambda share=share: run(1, share) for share in (False, True)}
    fns |= {(True, size): lambda size=size: run(size) for size in batches}
    seconds = interleaved_medians(fns, repeats)
    one = min((key for key in fns if key[1] == 1), key=lambda key: seconds[key])
    form = {False: "transformers' form", True: "beams sharing their source"}
    return [
        _row(
            f"BART PREFIX summaries, {n_sources} sources of 60-300 tokens (demo-sized BART, CPU)",
            f"batch 1, {form[one[0]]} (the faster)",
            seconds[one],
            f"right-padded batches of {size}",
            seconds[True, size],
            "≥ 5× on 2 CPU cores",
            note=f"outputs identical: {identical[size]}; batch 1 in transformers' form: "
            f"{seconds[False, 1] / seconds[True, size]:.2f}×",
        )
        for size in batches
    ]


def bench_demo_decoding(repeats: int) -> list[dict]:
    """The real demo models (trained by ``make demo``), through the decode stage's own functions, at batch 1
    against batches (GPT-2: the demo config's 8, the paper config's 32, and 48; BART: the authors' 8, and 16).
    The E2E demo test set has only 24 sources, so its batches mostly wait for their longest output; 96 distinct
    sources of the demo's training file give a workload the size of a real test set (E2E's has 630 sources)."""
    runs = ROOT / "demo" / "results" / "runs"
    rows = []
    for run_id, batches, sources in (
        ("e2e-tiny-gpt2-prefix", (8, 24), None),
        ("e2e-tiny-gpt2-prefix", (8, 32, 48), ("train", 96)),
        ("xsum-tiny-bart-prefix_xsum_2pct", (8, 16), None),
        ("xsum-tiny-bart-prefix_xsum_2pct", (8, 32), ("train", 64)),
    ):
        if (runs / run_id / "test.hyp.json").is_file():
            rows += _demo_run_rows(runs / run_id, batches, repeats, sources)
        else:
            rows.append({"name": f"demo model {run_id}", "note": "skipped: not decoded (`make demo` first)"})
    return rows


def _demo_run_rows(
    run: Path, batches: tuple[int, ...], repeats: int, sources: tuple[str, int] | None
) -> list[dict]:
    from prefixtune.data.records import EvalItem, read_jsonl
    from prefixtune.decoding.decode import describe, load_for_decoding, summarize
    from prefixtune.training.seq2seq import DEFAULT_MAX_SOURCE

    spec = json.loads((run / "run.json").read_text())["spec"]
    record = json.loads((run / "test.hyp.json").read_text())
    items_path = ROOT / record["items"]
    device = torch.device("cpu")
    base = ROOT / "demo" / "resources" / "models" / spec["model"]
    _, method, tokenizer = load_for_decoding(spec, base, run / "trained", device)
    if sources is None:
        items = read_jsonl(items_path, EvalItem)
        keys = list(dict.fromkeys(item.key for item in items))
        source_of = {item.key: item.source for item in items}
        what = f"its {len(keys)} test sources"
    else:
        split, n = sources
        items_path = items_path.with_name(f"{split}.jsonl")
        lines = items_path.read_text(encoding="utf-8").splitlines()
        distinct = list(dict.fromkeys(json.loads(line)["source"] for line in lines))[:n]
        keys = [f"{split}-{i}" for i in range(len(distinct))]
        source_of = dict(zip(keys, distinct, strict=True))
        what = f"{len(keys)} distinct sources of its {split} file"

    recorded = record["decoding"]
    seq2seq = method.model.config.is_encoder_decoder
    # the decode stage's form and the other one at batch 1: GPT-2's attention (describe's default eager, or
    # sdpa); BART PREFIX's beams sharing their source's cross-attention keys or transformers' per-beam copies
    attention, other = (
        ("shared source", "per beam") if seq2seq else (str(recorded.get("attention", "eager")), "sdpa")
    )

    def decode(size: int, form: str = attention) -> list[str]:
        decoding = {**recorded, "batch_size": size, **({} if seq2seq else {"attention": form})}
        with torch.no_grad():
            if seq2seq:
                max_source = int(spec["hparams"].get("max_source_tokens", DEFAULT_MAX_SOURCE))
                decoding["beams_share_source"] = form != "per beam"
                sources = [source_of[k] for k in keys]
                return summarize(method, tokenizer, sources, decoding, max_source, device)
            found = describe(method, tokenizer, keys, source_of, decoding, items_path, device)
            return [found[k] for k in keys]

    # the reference: BART in transformers' own form; GPT-2 in the authors' algorithm
    expected = decode(1, "per beam" if seq2seq else attention)
    identical = {size: decode(size) == expected for size in batches}
    fns = {(attention, size): lambda size=size: decode(size) for size in (1, *batches)}
    if attention != other:  # the other form's batch 1, for the fairest comparison
        fns[other, 1] = lambda: decode(1, other)
    seconds = interleaved_medians(fns, repeats)
    where = f"demo model `{run.name}`, {what} (trained by `make demo`, CPU)"
    # the baseline is batch 1 in its faster form (GPT-2: sdpa on CPU), so that neither side is slowed by the other's
    one = min((key for key in fns if key[1] == 1), key=lambda key: seconds[key])
    rows = []
    for size in batches:
        note = f"outputs identical to batch 1 ({'per beam' if seq2seq else attention}): {identical[size]}"
        if one != (attention, 1):
            same = seconds[attention, 1] / seconds[attention, size]
            note += f"; against batch 1 ({attention}) as well: {same:.2f}×"
        rows.append(
            _row(
                where,
                f"batch 1, {one[0]}" + (" (the faster form)" if one != (attention, 1) else ""),
                seconds[one],
                f"batches of {size}, {attention}",
                seconds[attention, size],
                "≥ 5× on 2 CPU cores",
                note=note,
            )
        )
    return rows


def bench_training(size: str, repeats: int) -> list[dict]:
    batch, labels = training_batch()
    finetune = training_step(
        build_method("finetune", random_gpt2(size), FINETUNE_SETTINGS), "token_mean", batch, labels
    )
    ours = training_step(
        build_method("prefix", random_gpt2(size), PREFIX_SETTINGS), "sequence_sum", batch, labels
    )
    base = median_seconds(finetune, repeats)
    cand = median_seconds(ours, repeats)
    rows = [
        _row(
            f"training step, GPT-2 {size} config, batch 5 × 64 tokens (CPU)",
            "FINETUNE",
            base,
            "PREFIX",
            cand,
            "> 1× (the paper: prefix-tuning about 30 % faster)",
        )
    ]
    try:
        import peft
    except ImportError:
        return rows
    config = peft.PrefixTuningConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=5, prefix_projection=True, encoder_hidden_size=512
    )
    oracle = peft.get_peft_model(random_gpt2(size), config)
    oracle.train()
    optimizer = torch.optim.AdamW([p for p in oracle.parameters() if p.requires_grad], lr=1e-5)

    def peft_step() -> None:
        logits = oracle(input_ids=batch).logits
        loss = lm_loss(logits, labels, "sequence_sum")
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    base = median_seconds(peft_step, repeats)
    cand = median_seconds(ours, repeats)
    rows.append(
        _row(
            f"PREFIX training tokens/s, GPT-2 {size} config, same batch (CPU)",
            f"peft {peft.__version__} PrefixTuning",
            base,
            "ours",
            cand,
            "≥ 1.0×",
        )
    )
    return rows


def bench_length_grouping() -> list[dict]:
    lengths = _e2e_lengths()
    plain = epoch_batches(len(lengths), 10, 101, 0)
    grouped = epoch_batches(len(lengths), 10, 101, 0, lengths)
    return [
        {
            "name": f"padding in training batches of 10 ({len(lengths)} E2E-length examples)",
            "baseline": f"random batches: {padding_share(plain, lengths):.1%} padding",
            "candidate": f"length-grouped: {padding_share(grouped, lengths):.1%} padding",
            "ratio": padding_share(plain, lengths) / max(padding_share(grouped, lengths), 1e-9),
            "target": "< 10 % padding",
        }
    ]


def _e2e_lengths() -> list[int]:
    """Token-ish lengths (source + target words) of the real E2E test file when ../shared is there."""
    path = SHARED / "data_samples" / "e2e" / "prefixtuning_format" / "src1_test.txt"
    if path.is_file():
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if "||" in line]
        return [len(line.split()) + 2 for line in lines]
    generator = torch.Generator().manual_seed(0)
    return torch.randint(25, 90, (4693,), generator=generator).tolist()


def bench_webnlg_scoring() -> list[dict]:
    """The real WebNLG 2017 test set (1,862 entries, ../shared) scored on real system outputs (the BART anchor
    outputs of ../shared/metric_vectors/webnlg_bart_anchor)."""
    from prefixtune.metrics.webnlg import score_webnlg

    xml = SHARED / "data_samples" / "webnlg" / "testdata_with_lex.xml"
    outputs = SHARED / "metric_vectors" / "webnlg_bart_anchor" / "hypotheses.txt"
    if not xml.is_file() or not outputs.is_file():
        return [
            {"name": "WebNLG test-set scoring", "note": f"skipped: {xml} or {outputs} absent (no ../shared)"}
        ]
    hyps = outputs.read_text(encoding="utf-8").splitlines()
    started = time.perf_counter()
    score_webnlg(hyps, xml, workers=os.cpu_count() or 1)
    seconds = time.perf_counter() - started
    official = 330.0  # about 5.5 minutes for the challenge's scripts on this set (the measurement)
    return [
        _row(
            f"WebNLG test set ({len(hyps)} entries): BLEU, METEOR, TER on all/seen/unseen",
            "official challenge scripts (≈ 5.5 min, stated)",
            official,
            f"ours, {os.cpu_count()} cores",
            seconds,
            "< 60 s on 2 cores",
        )
    ]


def demo_stage_times(log_dir: Path) -> list[str]:
    """Per-rule wall time of the latest demo run, from Snakemake's own log (start and finish stamps)."""
    logs = sorted(log_dir.glob("*.snakemake.log"), key=lambda p: p.stat().st_mtime)
    logs = [p for p in logs if "demo/" in p.read_text(errors="replace")[:200000]]
    if not logs:
        return ["No demo run found (`make demo` first)."]
    stamp, rule, pending = None, {}, None
    started, seconds = {}, defaultdict(list)
    first = last = None
    for line in logs[-1].read_text(errors="replace").splitlines():
        if m := re.fullmatch(r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]", line):
            stamp = datetime.strptime(re.sub(" +", " ", m.group(1)), "%a %b %d %H:%M:%S %Y")
            first, last = first or stamp, stamp
        elif m := re.match(r"(?:local)?rule (\w+):", line):
            pending = m.group(1)
        elif (m := re.match(r"\s+jobid: (\d+)", line)) and pending:
            started[m.group(1)], rule[m.group(1)], pending = stamp, pending, None
        elif (m := re.match(r"Finished jobid: (\d+)", line)) and m.group(1) in started:
            seconds[rule[m.group(1)]].append((stamp - started[m.group(1)]).total_seconds())
    lines = [
        f"Latest demo run ({logs[-1].name}): {(last - first).total_seconds() / 60:.1f} min wall for the DAG.",
        "",
        "| stage (rule) | jobs | job-seconds | mean s/job |",
        "|---|---|---|---|",
    ]
    for name, values in sorted(seconds.items(), key=lambda kv: -sum(kv[1])):
        lines.append(f"| {name} | {len(values)} | {sum(values):.0f} | {sum(values) / len(values):.1f} |")
    return lines


def forecast_lines() -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", "from prefixtune.cli import main; main()", "plan", "--forecast"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split("Forecast of the training compute", 1)[-1].split("\n", 2)[-1].strip().splitlines()


def render(rows: list[dict], stages: list[str], forecast: list[str], args: argparse.Namespace) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"`make bench` on {platform.node()} ({os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{'GPU: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}), "
        f"{datetime.now().strftime('%Y-%m-%d %H:%M')}. Ratio = baseline time / candidate time (> 1: the "
        "candidate is faster), both measured in the same process; medians over "
        f"{args.repeats} repeats after warm-up (GPT-2 decoding: the timed variants take turns in every repeat).",
        "",
        "| benchmark | baseline | candidate | ratio | target | note |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r['ratio']:.2f}×" if "ratio" in r else "–"
        lines.append(
            f"| {r['name']} | {r.get('baseline', '–')} | {r.get('candidate', '–')} | {ratio} | "
            f"{r.get('target', '')} | {r.get('note', '')} |"
        )
    lines += ["", "## Demo wall time per stage", "", *stages]
    lines += ["", "## Forecast: paper-scale training GPU-hours per artifact", "", *forecast]
    return "\n".join(lines) + "\n"


def _on_gpu(args: argparse.Namespace, what: str) -> list[dict]:
    from bench_gpu import bench_gpu_decoding, bench_gpu_training

    if args.gpu_device is None:
        target = "≥ 20× with GPT-2 medium" if what == "decoding" else "bf16 / TF32 steps vs fp32"
        return [{"name": f"GPU {what}", "note": f"skipped: no GPU here (target: {target})"}]
    device = torch.device(args.gpu_device)
    if what == "decoding":
        return bench_gpu_decoding(device, args.gpu_size, args.gpu_prompts, (16, 32), args.repeats)
    return bench_gpu_training(device, args.gpu_size, args.repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-size", default="small", choices=["tiny", "small", "medium"])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32, help="GPT-2 decoding batch (the paper config's 32)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench.md")
    parser.add_argument(
        "--gpu-device",
        default="cuda" if torch.cuda.is_available() else None,
        help="device of the GPU benchmarks (default: cuda when there is one, else they are skipped)",
    )
    parser.add_argument("--gpu-size", default="medium", choices=["tiny", "small", "medium"])
    parser.add_argument("--gpu-prompts", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    rows: list[dict] = []
    for name, bench in (
        ("decoding", lambda: bench_batched_decoding(args.prompts, args.batch, args.repeats)),
        ("BART decoding", lambda: bench_bart_decoding(32, (8, 32), args.repeats)),
        ("demo models' decoding", lambda: bench_demo_decoding(args.repeats)),
        ("training", lambda: bench_training(args.train_size, args.repeats)),
        ("length grouping", bench_length_grouping),
        ("WebNLG scoring", bench_webnlg_scoring),
        ("GPU decoding", lambda: _on_gpu(args, "decoding")),
        ("GPU training", lambda: _on_gpu(args, "training")),
    ):
        print(f"bench: {name} ...", flush=True)
        results = bench()
        for r in results:
            print(f"  {r['name']}: ratio {r.get('ratio', float('nan')):.2f}  {r.get('note', '')}", flush=True)
        rows += results
    text = render(rows, demo_stage_times(ROOT / ".snakemake" / "log"), forecast_lines(), args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
