"""``prefixtune <stage>``: one subcommand per pipeline stage; every Snakemake rule calls one with explicit paths."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from prefixtune.report.titles import ALL_TITLES

log = logging.getLogger("prefixtune")


def _json_arg(text: str) -> dict:
    """A JSON object given inline or as a path to a JSON file."""
    path = Path(text)
    raw = path.read_text() if not text.lstrip().startswith("{") and path.is_file() else text
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not a JSON object or JSON file: {text[:80]!r} ({err})") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def cmd_synthesize(args: argparse.Namespace) -> None:
    from prefixtune.data.synthetic import write_synthetic

    files = write_synthetic(args.dataset, args.out_dir, args.seed, args.n_train, args.n_dev, args.n_test)
    log.info("wrote %s", {k: str(v) for k, v in files.items()})


def cmd_download(args: argparse.Namespace) -> None:
    from prefixtune.data.download import download

    download(args.url, args.out, args.sha256 or None)


def cmd_prepare(args: argparse.Namespace) -> None:
    from prefixtune.data.prepare import prepare

    raw = {"train": args.train, "dev": args.dev, "test": args.test}
    options = {"e2e_format": args.e2e_format, "webnlg_first_entry_bug": args.webnlg_first_entry_bug}
    prepare(args.dataset, raw, args.out_dir, options)


def cmd_subsample(args: argparse.Namespace) -> None:
    from prefixtune.data.subsample import write_subset

    kind, value = ("size", args.size) if args.size is not None else ("percent", args.percent)
    record = write_subset(args.prepared, kind, value, args.data_seed, args.out_dir)
    log.info("subset %s: %s", args.out_dir, record["counts"])


def cmd_valset(args: argparse.Namespace) -> None:
    from prefixtune.data.valset import write_first_items

    n = write_first_items(args.items, args.first, args.out)
    log.info("validation subset %s: the first %d items of %s", args.out, n, args.items)


def cmd_xsum_validation_subset(args: argparse.Namespace) -> None:
    from prefixtune.data.xsum_validation import write_validation_subset

    record = write_validation_subset(args.valset, args.first, args.out_dir)
    log.info("XSUM validation subset %s: %d items", args.out_dir, record["items"])


def cmd_xsum_split(args: argparse.Namespace) -> None:
    from prefixtune.data.xsum_topics import make_xsum_split

    options = {"test_from": args.test_from, "line_join": args.line_join}
    sizes = make_xsum_split(
        args.raw, args.split_ids, args.kind, args.seed, args.test_cap, args.out_dir, **options
    )
    log.info("wrote the %s split to %s: %s", args.kind, args.out_dir, sizes)


def cmd_base_model(args: argparse.Namespace) -> None:
    if args.hub_id:
        from prefixtune.data.download import download_hub_model

        download_hub_model(args.hub_id, args.revision, args.out)
        return
    if args.arch == "bart":
        import torch

        from prefixtune.data.synthetic_xsum import xsum_pretraining_pairs
        from prefixtune.models.tiny_bart import TinyBartRecipe, build_tiny_bart

        # a tiny model gains nothing from threads; 2 beside a busy job ran 50x slower
        torch.set_num_threads(1)
        bart_recipe = TinyBartRecipe(**args.tiny_recipe)
        build_tiny_bart(args.out, xsum_pretraining_pairs(bart_recipe.seed, args.corpus_size), bart_recipe)
        return
    from prefixtune.data.synthetic import synthetic_lm_corpus
    from prefixtune.models.tiny import TinyRecipe, build_tiny_model

    recipe = TinyRecipe(**args.tiny_recipe)
    texts = synthetic_lm_corpus(recipe.seed, args.corpus_size)
    summary = build_tiny_model(texts, args.out, recipe)
    log.info("tiny model: %s", summary)


def cmd_train(args: argparse.Namespace) -> None:
    from prefixtune.training.attempts import TrainerBusyError
    from prefixtune.training.train import TimeBudgetExceeded, train_run

    # stop early enough to checkpoint: the margin, but never more than a fifth of a short limit
    margin = min(args.safety_margin_min, 0.2 * args.time_budget_min)
    budget = (args.time_budget_min - margin) * 60 if args.time_budget_min else None
    try:
        record = train_run(
            args.spec,
            args.train,
            args.base_model,
            args.out,
            args.run_json,
            args.checkpoint_dir,
            budget,
            args.checkpoint_every,
            dev_path=args.dev,
            decoding=args.decoding,
            lock_wait_s=args.lock_wait_s,
            log_path=args.log,
        )
    except TrainerBusyError as err:
        log.error("%s", err)
        sys.exit(1)
    except TimeBudgetExceeded as err:
        log.error("%s; checkpoint kept in %s, a retry resumes", err, args.checkpoint_dir)
        sys.exit(75)
    log.info("trained %s: %s", record["run_id"], record["parameters"])


def cmd_gpu_smoke(args: argparse.Namespace) -> None:
    from prefixtune.cluster.gpu_smoke import gpu_smoke

    gpu_smoke(args.out, allow_cpu=args.allow_cpu)


def cmd_decode(args: argparse.Namespace) -> None:
    from prefixtune.decoding.decode import decode_split

    decode_split(args.spec, args.items, args.base_model, args.trained, args.out, args.decoding, args.limit)


def cmd_dart_tokenize(args: argparse.Namespace) -> None:
    from prefixtune.metrics.dart import preprocess_dart_hypothesis
    from prefixtune.provenance import write_text_atomic

    lines = args.hyp.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file's final newline; "\r" and other separators stay inside their line
    write_text_atomic(args.out, "".join(preprocess_dart_hypothesis(line) + "\n" for line in lines))


def cmd_score(args: argparse.Namespace) -> None:
    from prefixtune.metrics.score import score_files
    from prefixtune.metrics.segments import format_scores_json, summary
    from prefixtune.provenance import write_text_atomic

    result = score_files(
        args.dataset,
        args.hyp,
        args.refs,
        workers=args.workers,
        reference_tokenizer=args.reference_tokenizer,
        reference_max_tokens=args.reference_max_tokens,
        model_metrics=args.model_metrics,
    )
    if args.out:  # segment statistics one line per metric (prefixtune.metrics.segments)
        write_text_atomic(args.out, format_scores_json(result))
    shown = {**result, "segments": summary(result["segments"])} if "segments" in result else result
    print(json.dumps(shown, indent=2, ensure_ascii=False))


def cmd_metric_models(args: argparse.Namespace) -> None:
    import torch

    from prefixtune.models.metric_models import MetricModelRecipe, build_metric_models

    torch.set_num_threads(1)  # tiny models gain nothing from threads
    spec = build_metric_models(args.out_dir, MetricModelRecipe(**args.recipe))
    log.info("tiny metric models (random weights) in %s: %s", args.out_dir, spec)


def cmd_convert_bleurt(args: argparse.Namespace) -> None:
    from prefixtune.metrics.bleurt import convert_tf_checkpoint

    log.info("converted BLEURT checkpoint: %s", convert_tf_checkpoint(args.tf_checkpoint, args.out))


def cmd_params(args: argparse.Namespace) -> None:
    from prefixtune.methods.params import method_parameters

    settings: dict = {}
    if args.method == "prefix":
        settings = {"prefix_length": args.prefix_length, "mid_dim": args.mid_dim}
        if not args.reparametrize:
            settings = {"prefix_length": args.prefix_length, "reparametrize": False}
    elif args.method == "emb_prefix":
        settings = {
            "prefix_length": args.prefix_length,
            "mid_dim": args.mid_dim,
            "parametrize": args.parametrize,
        }
    elif args.method == "infix":
        settings = {"prefix_length": args.prefix_length, "mid_dim": args.mid_dim, "form": args.form}
    elif args.method == "adapter":
        settings = {"percent": args.percent, "design": args.design}
    elif args.method == "ft_top":
        settings = {"top_layers": args.top_layers, "train_embeddings": args.train_embeddings}
    print(json.dumps(method_parameters(args.model, args.method, settings), indent=2))


def cmd_report(args: argparse.Namespace) -> None:
    from prefixtune.report.build import build_report

    build_report(
        args.artifact,
        args.manifest,
        args.paper,
        args.version,
        args.out_dir,
        args.demo,
        tolerance=args.tolerance,
        config_hash=args.config_hash,
        claims_file=args.claims,
        claims_settings=args.claims_settings,
    )


def cmd_claims(args: argparse.Namespace) -> None:
    from prefixtune.claims.engine import settings_from
    from prefixtune.claims.report import write_claims_report
    from prefixtune.report.build import DEMO_BANNER

    write_claims_report(
        args.claims,
        args.manifests,
        args.paper,
        args.version,
        settings_from(args.settings),
        args.out,
        demo=args.demo,
        banner=DEMO_BANNER if args.demo else "",
    )


def cmd_plan(args: argparse.Namespace) -> None:
    from prefixtune.cluster.plan import load_config, plan_table

    config = load_config(args.configfile)
    print(plan_table(config), end="")
    if args.forecast:
        from prefixtune.cluster.forecast import forecast_table

        results = args.results or Path(config["paths"]["results"])
        print("\nForecast of the training compute (from " + str(results) + "):\n")
        print(forecast_table(config, results, args.artifact or None), end="")


def cmd_incomplete(args: argparse.Namespace) -> None:
    from prefixtune.cluster.incomplete import incomplete_runs, temporary_trained_runs
    from prefixtune.cluster.plan import load_config
    from prefixtune.grid import expand_runs

    config = load_config(args.configfile)
    results = Path(config["paths"]["results"])
    runs = expand_runs(config)
    found = incomplete_runs(results, runs, temporary_trained_runs(config, runs))
    for run, files in found.items():
        log.warning(
            "%s: its training is gone (interrupted retrain?); %d files made from it remain", run, len(files)
        )
        print("\n".join(str(f) for f in files))
    if not found:
        log.info("no incomplete runs under %s", results)


def cmd_index(args: argparse.Namespace) -> None:
    from prefixtune.report.index import build_index

    build_index(args.status, args.out, args.demo)


def cmd_compute(args: argparse.Namespace) -> None:
    from prefixtune.report.compute import build_compute

    build_compute(args.status, args.out, args.demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prefixtune", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synthesize", help="write synthetic demo data in a dataset's real raw format")
    p.add_argument("--dataset", required=True, choices=["e2e", "webnlg", "dart", "xsum", "xsum_raw"])
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, required=True)
    p.add_argument("--n-dev", type=int, required=True)
    p.add_argument("--n-test", type=int, required=True)
    p.set_defaults(func=cmd_synthesize)

    p = sub.add_parser("download", help="fetch one official file, checksummed")
    p.add_argument("--url", required=True)
    p.add_argument("--sha256", default="")
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("prepare", help="raw files -> linearized jsonl + official reference files")
    p.add_argument("--dataset", required=True, choices=["e2e", "webnlg", "dart", "xsum"])
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--dev", required=True, type=Path)
    p.add_argument("--test", required=True, type=Path)
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--e2e-format", choices=["src1", "csv"], default="src1")
    p.add_argument("--webnlg-first-entry-bug", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("subsample", help="a low-data subsample (n pairs, or a percent) of a prepared dataset")
    p.add_argument("--prepared", required=True, type=Path, help="a prepared dataset directory")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--size", type=int, help="training pairs (the dev set gets int(0.3 n) items)")
    group.add_argument("--percent", type=float, help="a share of the training pairs and dev items")
    p.add_argument("--data-seed", type=int, required=True)
    p.add_argument("--out-dir", required=True, type=Path)
    p.set_defaults(func=cmd_subsample)

    p = sub.add_parser("valset", help="the first N items of a prepared dev file (the authors' n_val)")
    p.add_argument("--items", required=True, type=Path, help="prepared dev.jsonl")
    p.add_argument("--first", required=True, type=int, help="how many items (the authors' XSUM: 500)")
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_valset)

    p = sub.add_parser(
        "xsum-validation-subset",
        help="the first N XSUM validation articles with their references (ACL Table 7)",
    )
    p.add_argument("--valset", required=True, type=Path, help="the first N validation items (rule valset)")
    p.add_argument("--first", required=True, type=int, help="N (the authors' n_val: 500)")
    p.add_argument("--out-dir", required=True, type=Path)
    p.set_defaults(func=cmd_xsum_validation_subset)

    p = sub.add_parser("xsum-split", help="an XSUM extrapolation split (Table 3) from the raw XSum files")
    p.add_argument("--raw", required=True, type=Path, help="raw tarball or <id>.summary folder")
    p.add_argument("--split-ids", required=True, type=Path, help="XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json")
    p.add_argument("--kind", required=True, choices=["news_sports", "within_news"])
    p.add_argument("--seed", type=int, default=0, help="seeds the test cap's sample (the authors set none)")
    p.add_argument("--test-cap", type=int, default=8000, help="test articles at most (the authors: 8000)")
    p.add_argument("--test-from", choices=["train", "test"], default="train", help="official split drawn")
    p.add_argument("--line-join", choices=["none", "space"], default="none", help="none: as the authors")
    p.add_argument("--out-dir", required=True, type=Path)
    p.set_defaults(func=cmd_xsum_split)

    p = sub.add_parser("base-model", help="a hub model saved locally, or the offline tiny GPT-2 / BART")
    p.add_argument("--hub-id", help="e.g. gpt2-medium; omit to build the tiny offline model")
    p.add_argument("--revision", default=None)
    p.add_argument("--arch", choices=["gpt2", "bart"], default="gpt2", help="the tiny model's architecture")
    p.add_argument(
        "--tiny-recipe", type=_json_arg, default={}, help="TinyRecipe / TinyBartRecipe fields as JSON"
    )
    p.add_argument("--corpus-size", type=int, default=20000, help="synthetic sentences for the tiny LM")
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_base_model)

    p = sub.add_parser(
        "gpu-smoke", help="one tiny PREFIX training step on the GPU (fp32 and bf16): run first"
    )
    p.add_argument("--out", required=True, type=Path, help="JSON record of the device and the steps")
    p.add_argument("--allow-cpu", action="store_true", help="run on the CPU when no GPU is visible (tests)")
    p.set_defaults(func=cmd_gpu_smoke)

    p = sub.add_parser("train", help="train one run")
    p.add_argument("--spec", required=True, type=_json_arg, help="run spec (JSON or file)")
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--base-model", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="folder for the trained parameters only")
    p.add_argument("--run-json", required=True, type=Path)
    p.add_argument("--checkpoint-dir", required=True, type=Path)
    p.add_argument("--time-budget-min", type=float, default=0, help="the job's wall-time limit (0: none)")
    p.add_argument("--safety-margin-min", type=float, default=10, help="stop this long before the limit")
    p.add_argument("--checkpoint-every", type=int, default=1000, help="optimizer steps between checkpoints")
    p.add_argument(
        "--lock-wait-s",
        type=float,
        default=120,
        help="how long to wait for another trainer of the same run to let go of its checkpoint folder",
    )
    p.add_argument(
        "--log",
        type=Path,
        default=None,
        help="the job's log: each attempt's stderr is kept in <log>.attemptN.log",
    )
    p.add_argument("--dev", type=Path, default=None, help="dev / validation items for checkpoint selection")
    p.add_argument(
        "--decoding",
        type=_json_arg,
        default=None,
        help="decode settings of the XSUM validation (JSON or file)",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("decode", help="beam-search decode a run on one split")
    p.add_argument("--spec", required=True, type=_json_arg)
    p.add_argument("--items", required=True, type=Path)
    p.add_argument("--base-model", required=True, type=Path)
    p.add_argument("--trained", required=True, type=Path)
    p.add_argument("--decoding", required=True, type=_json_arg)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--limit", type=int, default=None, help="decode only the first N items (debugging)")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("dart-tokenize", help="lower-case and \\W-split DART outputs, as the authors did")
    p.add_argument("--hyp", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_dart_tokenize)

    p = sub.add_parser("score", help="score hypotheses with the dataset's official protocol")
    p.add_argument("--dataset", required=True, choices=["e2e", "webnlg", "dart", "xsum"])
    p.add_argument("--hyp", required=True, type=Path)
    p.add_argument("--refs", required=True, type=Path)
    p.add_argument("--out", type=Path, help="write the JSON here as well")
    p.add_argument("--workers", type=int, default=1, help="processes for TER (WebNLG, DART)")
    p.add_argument(
        "--reference-tokenizer", type=Path, help="XSUM: truncate references with this model's tokenizer"
    )
    p.add_argument(
        "--reference-max-tokens", type=int, default=100, help="XSUM: reference length (the code: 100)"
    )
    p.add_argument(
        "--model-metrics",
        type=_json_arg,
        default=None,
        help='DART: {"moverscore": {...}, "bertscore": {...}, "bleurt": {...}} (JSON or file), each optional',
    )
    p.set_defaults(func=cmd_score)

    p = sub.add_parser(
        "metric-models", help="tiny random-weight models for DART's MoverScore/BERTScore/BLEURT"
    )
    p.add_argument("--out-dir", required=True, type=Path, help="gets the models and model_metrics.json")
    p.add_argument("--recipe", type=_json_arg, default={}, help="MetricModelRecipe fields as JSON")
    p.set_defaults(func=cmd_metric_models)

    p = sub.add_parser(
        "convert-bleurt", help="a TensorFlow BLEURT checkpoint -> transformers (needs tensorflow)"
    )
    p.add_argument("--tf-checkpoint", required=True, type=Path, help="e.g. bleurt/bleurt/test_checkpoint")
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cmd_convert_bleurt)

    p = sub.add_parser("params", help="a method's parameter counts on a paper model (no download)")
    p.add_argument("--model", required=True, choices=["gpt2-medium", "gpt2-large", "bart-large"])
    p.add_argument(
        "--method", required=True, choices=["finetune", "ft_top", "adapter", "prefix", "emb_prefix", "infix"]
    )
    p.add_argument("--prefix-length", type=int, default=10, help="prefix / emb_prefix / infix length P")
    p.add_argument("--mid-dim", type=int, default=512, help="prefix MLP width")
    p.add_argument(
        "--reparametrize", action=argparse.BooleanOptionalAction, default=True, help="prefix: MLP or raw"
    )
    p.add_argument("--parametrize", choices=["mlp", "plain"], default="mlp", help="emb_prefix")
    p.add_argument("--form", choices=["code", "paper"], default="code", help="infix")
    p.add_argument("--percent", type=float, default=0.1, help="adapter share of the LM, in %%")
    p.add_argument("--design", choices=["lin", "houlsby"], default="lin", help="adapter design")
    p.add_argument("--top-layers", type=int, default=2)
    p.add_argument("--train-embeddings", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("report", help="a paper table or figure with reproduced and published numbers")
    p.add_argument("--artifact", required=True, choices=sorted(ALL_TITLES))
    p.add_argument("--manifest", required=True, type=_json_arg, help="rows and their score files (JSON)")
    p.add_argument("--paper", required=True, type=Path)
    p.add_argument("--version", default="arxiv_v1", choices=["arxiv_v1", "acl2021"])
    p.add_argument(
        "--out-dir", required=True, type=Path, help="writes <artifact>.md/.csv/.json (+ .png/.pdf)"
    )
    p.add_argument("--tolerance", type=_json_arg, default={}, help="paper dataset -> metric -> band (JSON)")
    p.add_argument("--config-hash", default="")
    p.add_argument("--claims", type=Path, default=None, help="the claims file: list this page's claims")
    p.add_argument(
        "--claims-settings",
        type=_json_arg,
        default={},
        help="resamples, seed, confidence (report.claims; JSON)",
    )
    p.add_argument("--demo", action="store_true", help="mark the report as the offline demo")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("claims", help="reports/claims.md: a verdict for every claim of the paper")
    p.add_argument("--claims", required=True, type=Path, help="the claims file (config/claims.yaml)")
    p.add_argument(
        "--manifests",
        required=True,
        type=_json_arg,
        help="artifact -> its rows and score files (JSON or file)",
    )
    p.add_argument("--paper", required=True, type=Path)
    p.add_argument("--version", default="arxiv_v1", choices=["arxiv_v1", "acl2021"])
    p.add_argument(
        "--settings", type=_json_arg, default={}, help="resamples, seed, confidence (report.claims; JSON)"
    )
    p.add_argument("--out", required=True, type=Path, help="claims.md (with .csv and .json beside it)")
    p.add_argument(
        "--demo", action="store_true", help="demo scale: rows the demo does not run are not errors"
    )
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("plan", help="the training runs per artifact of a config (shared runs counted once)")
    p.add_argument("--configfile", type=Path, default=Path("config/config.yaml"))
    p.add_argument(
        "--forecast", action="store_true", help="also forecast the training GPU-hours per artifact"
    )
    p.add_argument(
        "--artifact", nargs="*", help="forecast only these artifacts (a snakemake target's artifact)"
    )
    p.add_argument(
        "--results", type=Path, help="where measured runs are (default: the config's paths.results)"
    )
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser(
        "incomplete",
        help="runs whose training is gone while files made from it remain; prints those files for --forcerun",
    )
    p.add_argument("--configfile", type=Path, default=Path("config/config.yaml"))
    p.set_defaults(func=cmd_incomplete)

    for name, func, text in (
        ("index", cmd_index, "reports/index.md: every artifact with its status, commit and GPU-hours"),
        ("compute", cmd_compute, "reports/compute.md: wall time and GPU-hours per artifact and per run"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument(
            "--status", nargs="+", required=True, type=Path, help="the artifacts' .json status records"
        )
        p.add_argument("--out", required=True, type=Path)
        p.add_argument("--demo", action="store_true")
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, KeyError, FileNotFoundError, FloatingPointError) as err:
        # bad input: one clear line (file, line or key, and what was expected); PREFIXTUNE_DEBUG=1 for the trace
        if os.environ.get("PREFIXTUNE_DEBUG"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"prefixtune {args.command}: error: {message}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
