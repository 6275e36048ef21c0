# Config validation, paths, the run grid and wildcard constraints shared by every rule.
import functools
import hashlib
import json
import os
import re
import shlex
import sys
from pathlib import Path, PurePosixPath

from snakemake.utils import validate

from prefixtune.cluster import slurm_status
from prefixtune.cluster.incomplete import incomplete_runs, temporary_trained_runs
from prefixtune.data.xsum_validation import subset_name, validation_settings
from prefixtune.decoding.settings import method_decoding
from prefixtune.grid import artifact_runs, data_tag, expand_runs, report_manifest

validate(config, "../schemas/config.schema.yaml")

# SLURM: a job sacct reports as "CANCELLED by <uid>" fails (and is retried) instead of hanging the workflow
# (snakemake-executor-plugin-slurm 2.8.0 matches only "CANCELLED"; prefixtune/cluster/slurm_status.py).
slurm_status.install()

RESOURCES = config["paths"]["resources"]
RESULTS = config["paths"]["results"]
REPORTS = config["paths"]["reports"]
LOGS = config["paths"]["logs"]
VALSETS = f"{RESULTS}/valsets"
RUNS = expand_runs(config)
DEMO = config["scale"] == "demo"

# The controller (not each job) names runs an interrupted forced retrain left behind (README, Cluster).
if workflow.is_main_process:
    for _run, _files in incomplete_runs(
        Path(RESULTS), RUNS, temporary_trained_runs(config, RUNS)
    ).items():
        print(
            f"Warning: run {_run}: run.json or trained/ is missing while {len(_files)} files made from it remain;"
            " Snakemake will not rebuild it by itself. Rebuild: snakemake [--profile slurm] <targets>"
            " --forcerun $(prefixtune incomplete [--configfile ...])",
            file=sys.stderr,
        )
# ACL Table 7's protocol (default: the authors' validation loop)
XSUM_VALIDATION = validation_settings(config)
SUBSET_TAG = re.compile(r"(n|pct)([0-9.]+)-d([0-9]+)")


wildcard_constraints:
    run="|".join(map(re.escape, RUNS)) or "none",
    dataset="|".join(map(re.escape, config["datasets"])),
    model="|".join(map(re.escape, config["models"])),
    split="dev|test",
    subset=SUBSET_TAG.pattern,
    artifact="|".join(map(re.escape, config["artifacts"])),


# methods whose trained output is (a large part of) the LM's weights
FULL_WEIGHT_KINDS = ("finetune", "ft_top")


def run_pattern(full_weights):
    """Wildcard pattern of the runs whose trained output is full LM weights (or of the other runs)."""
    runs = [
        r for r, s in RUNS.items() if (s["method"] in FULL_WEIGHT_KINDS) == full_weights
    ]
    return "|".join(map(re.escape, runs)) or "none"


def trained_output(full_weights):
    """A run's trained folder: temporary for full weights (GPT-2 large is 3 GB a run) unless
    training.keep_full_weights; protected for the small trained parameters when training.protect_trained.
    """
    out = directory(f"{RESULTS}/runs/{{run}}/trained")
    if full_weights and not config["training"].get("keep_full_weights", False):
        return temp(out)
    if not full_weights and config["training"].get("protect_trained", False):
        return protected(out)
    return out


def run_spec(wildcards):
    return RUNS[wildcards.run]


def train_data(wildcards):
    """The prepared data a run trains on: the dataset, a low-data subset of it, or an extrapolation split."""
    spec = RUNS[wildcards.run]
    dataset, data = spec["dataset"], spec["data"]
    if "split" in data:
        return f"{RESULTS}/splits/{dataset}/{data['split']}"
    if "size" in data or "percent" in data:
        return f"{RESULTS}/subsets/{dataset}/{data_tag(data)}"
    return f"{RESULTS}/data/{dataset}"


def eval_data(wildcards):
    """The prepared data a run is decoded and scored on: a subset's own dataset, a split's own test set; XSUM
    validation scores (ACL Table 7): the first scoring.xsum_validation.articles articles (rule
    xsum_validation_subset), unless all."""
    spec = RUNS[wildcards.run]
    if "split" in spec["data"]:
        return f"{RESULTS}/splits/{spec['dataset']}/{spec['data']['split']}"
    validation = subset_name(XSUM_VALIDATION["articles"])
    if spec["dataset"] == "xsum" and wildcards.split == "dev" and validation:
        return f"{RESULTS}/data/{validation}"
    return f"{RESULTS}/data/{spec['dataset']}"


def subset_args(wildcards):
    kind, value = SUBSET_TAG.fullmatch(wildcards.subset).group(1, 2)
    return f"--{'size' if kind == 'n' else 'percent'} {value}"


def run_resources(rule_name, key):
    """Resources of a rule for a run's base model (or the rule-wide block), from config."""

    def get(wildcards, attempt):
        block = config["resources"][rule_name]
        if "run" in wildcards.keys() and RUNS[wildcards.run]["model"] in block:
            block = block[RUNS[wildcards.run]["model"]]
        value = block.get(key, 0)
        return value * attempt if key == "runtime" else value

    return get


def gpu_request(count):
    """A GPU count (a number or a resource function) as the resources of the cluster's request style
    (``resources.gpu_request``): ``gpu`` (the plugin's sbatch --gpus=N, srun --gpus=N) or only ``gres``
    ("gpu:N": sbatch --gres=gpu:N; the job step inherits the job's GRES) for clusters that reject --gpus.
    """
    if config["resources"].get("gpu_request", "gpus") == "gpus":
        return {"gpu": count}

    def gres(wildcards, attempt):
        n = count(wildcards, attempt) if callable(count) else count
        return f"gpu:{n}" if n else ""

    return {"gres": gres}


def run_threads(rule_name):
    """A run's threads: its ``cpus_per_task`` (torch's intra-op threads; SLURM's --cpus-per-task)."""
    resources = run_resources(rule_name, "cpus_per_task")
    return lambda wildcards: max(1, resources(wildcards, 1))


def spec_json(wildcards):
    return json.dumps(RUNS[wildcards.run], sort_keys=True)


def decoding_json(wildcards):
    """The decode settings of a run: ``decoding``, or its dataset's ``decoding_by_dataset`` entry with the
    ``generate`` settings of the run's method kind (XSUM: PREFIX and FINE-TUNE decode differently).
    """
    run = RUNS[wildcards.run]
    settings = config.get("decoding_by_dataset", {}).get(
        run["dataset"], config["decoding"]
    )
    return json.dumps(method_decoding(settings, run["method"]), sort_keys=True)


def dataset_files(dataset):
    """split -> {url, sha256} or {name} entries of the dataset's configured format."""
    ds = config["datasets"][dataset]
    return ds["files"][ds["format"]]


def raw_name(entry):
    return entry.get("name") or PurePosixPath(entry["url"]).name


def raw_file(dataset, split):
    return f"{RESOURCES}/raw/{dataset}/{raw_name(dataset_files(dataset)[split])}"


def extrapolation_files(dataset):
    """raw / split_ids -> {url, sha256} or {name}: the raw files of XSUM's extrapolation splits (splits.smk)."""
    ext = config["datasets"][dataset].get("extrapolation", {})
    return {key: ext[key] for key in ("raw", "split_ids") if key in ext}


def download_entry(wildcards):
    entries = [
        *dataset_files(wildcards.dataset).values(),
        *extrapolation_files(wildcards.dataset).values(),
    ]
    for entry in entries:
        if raw_name(entry) == wildcards.filename:
            return entry
    raise ValueError(
        f"no file {wildcards.filename!r} configured for {wildcards.dataset}"
    )


REFS = {
    "e2e": "{split}.refs.txt",
    "webnlg": "{split}.refs.xml",
    "dart": "{split}.refs",
    "xsum": "{split}.refs.txt",
}


def hypothesis_file(wildcards):
    suffix = "hyp.tok.txt" if RUNS[wildcards.run]["dataset"] == "dart" else "hyp.txt"
    return f"{RESULTS}/runs/{wildcards.run}/{wildcards.split}.{suffix}"


def reference_tokenizer(wildcards):
    """XSUM references are truncated with the run's tokenizer (official_code.md §1.5); others need none."""
    spec = RUNS[wildcards.run]
    return f"{RESOURCES}/models/{spec['model']}" if spec["dataset"] == "xsum" else []


MODEL_METRICS = config.get("scoring", {}).get("dart_model_metrics")
METRIC_MODELS = f"{RESOURCES}/metric_models"


def metric_models_input(wildcards):
    """The tiny metric models (demo) a DART score needs; none otherwise."""
    dart = RUNS[wildcards.run]["dataset"] == "dart"
    return METRIC_MODELS if dart and MODEL_METRICS == "tiny" else []


def model_metrics_args(wildcards, input):
    if RUNS[wildcards.run]["dataset"] != "dart" or not MODEL_METRICS:
        return ""
    if MODEL_METRICS == "tiny":
        return f"--model-metrics {input.metric_models}/model_metrics.json"
    block = shlex.quote(json.dumps(MODEL_METRICS, sort_keys=True))
    return f"--model-metrics {block}"


def reference_args(wildcards, input):
    """XSUM references cut as labels: at the test length, or on the validation set at scoring.xsum_validation's."""
    if not input.reference_tokenizer:
        return ""
    n = config["decoding_by_dataset"]["xsum"].get("reference_max_tokens", 100)
    if wildcards.split == "dev":
        n = XSUM_VALIDATION["reference_max_tokens"]
    return (
        f"--reference-tokenizer {input.reference_tokenizer} --reference-max-tokens {n}"
    )


def base_model_args(wildcards):
    model = config["models"][wildcards.model]
    if model["source"] == "hub":
        return f"--hub-id {model['hub_id']} --revision {model.get('revision', 'main')}"
    recipe = json.dumps(model.get("recipe", {}))
    return (
        f"--arch {model.get('arch', 'gpt2')} --tiny-recipe '{recipe}'"
        f" --corpus-size {model.get('corpus_size', 20000)}"
    )


SCORES = f"{RESULTS}/runs/{{run}}/{{split}}.scores.json"


def artifact_scores(wildcards):
    manifest = report_manifest(config, wildcards.artifact, SCORES)
    files = [
        run["scores"]
        for row in manifest["rows"]
        for cell in row["cells"]
        for run in cell["runs"]
    ]
    return list(dict.fromkeys(files))


def qualitative_items(artifact):
    """(prepared dataset directory, eval items file) of a figure's text panel (Figure 3: "The Eagle")."""
    spec = config["artifacts"][artifact]
    panel = spec["qualitative"]
    split = spec.get("split_by_dataset", {}).get(panel["dataset"], spec["split"])
    directory = f"{RESULTS}/data/{panel['dataset']}"
    return directory, f"{directory}/{split}.jsonl"


def artifact_manifest(wildcards):
    manifest = report_manifest(config, wildcards.artifact, SCORES)
    if manifest["qualitative"]:
        manifest["qualitative"]["items"] = qualitative_items(wildcards.artifact)[1]
    return json.dumps(manifest)


def artifact_qualitative_inputs(wildcards):
    """The items file and the decoded texts a figure's text panel quotes."""
    if not config["artifacts"][wildcards.artifact].get("qualitative"):
        return []
    scores = artifact_scores(wildcards)
    hyps = [s.replace(".scores.json", ".hyp.txt") for s in scores]
    return [qualitative_items(wildcards.artifact)[0], *hyps]


def artifact_config_hash(wildcards):
    """What produced an artifact: its config entry, the resolved settings of its runs, and the data, model,
    decoding and scoring settings they use."""
    runs = [RUNS[r] for r in artifact_runs(config, wildcards.artifact)]
    used = {
        "datasets": {r["dataset"]: config["datasets"][r["dataset"]] for r in runs},
        "models": {r["model"]: config["models"][r["model"]] for r in runs},
    }
    settings = [
        config.get(key)
        for key in ("decoding", "decoding_by_dataset", "scoring", "report")
    ]
    payload = json.dumps(
        [config["artifacts"][wildcards.artifact], runs, used, settings],
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def artifact_caption(wildcards):
    from prefixtune.report.titles import ALL_TITLES

    return ALL_TITLES.get(wildcards.artifact, wildcards.artifact)


def selection_dev(wildcards):
    """The dev file a run's checkpoint selection evaluates on (None: the final model is kept): XSUM's first
    `val_items` validation articles (written by the valset rule), or a subsample's own dev items (low data, 30 % of n).
    """
    spec = RUNS[wildcards.run]
    selection = spec["selection"]
    if selection["rule"] == "final":
        return None
    if selection["rule"] == "best_val_rouge" and "size" not in spec["data"]:
        source = spec["data"].get("split", "full")
        return f"{VALSETS}/{spec['dataset']}/{source}/dev.first{selection['val_items']}.jsonl"
    return f"{train_data(wildcards)}/dev.jsonl"


def selection_input(wildcards):
    """The validation subset file, a declared input (a subsample's dev file comes with its folder)."""
    path = selection_dev(wildcards)
    return [path] if path and path.startswith(VALSETS) else []


def selection_args(wildcards):
    """--dev (and, for the XSUM validation, the run's own decode settings) when a checkpoint is selected."""
    path = selection_dev(wildcards)
    if not path:
        return ""
    args = f"--dev {shlex.quote(path)}"
    if RUNS[wildcards.run]["selection"]["rule"] == "best_val_rouge":
        args += f" --decoding {shlex.quote(decoding_json(wildcards))}"
    return args


def valset_source(wildcards):
    if wildcards.source == "full":
        return f"{RESULTS}/data/{wildcards.dataset}"
    return f"{RESULTS}/splits/{wildcards.dataset}/{wildcards.source}"


# The paper's claims (report.claims; README "Claims and verdicts"): every page lists its own, claims.md all,
# and what their verdicts rest on.
CLAIMS = {"file": "config/claims.yaml", **config.get("report", {}).get("claims", {})}
CLAIMS_SETTINGS = json.dumps({k: v for k, v in CLAIMS.items() if k != "file"})


@functools.cache
def claims_list():
    """The claims file, validated (read once per workflow run)."""
    from prefixtune.claims.spec import load_claims

    return load_claims(CLAIMS["file"])


def claims_artifacts():
    """The artifacts the claims file's statements name."""
    from prefixtune.claims.spec import selectors

    names = []
    for claim in claims_list():
        if "statement" in claim:
            names.append(claim["artifact"])
            names += [
                s["artifact"]
                for _, s in selectors(claim["statement"])
                if "artifact" in s
            ]
    return [a for a in dict.fromkeys(names) if a in config["artifacts"]]


def claims_inputs(wildcards):
    """The scores files of every artifact a claim rests on, and the run and decoding records beside them."""
    from types import SimpleNamespace

    scores = [
        s
        for a in claims_artifacts()
        for s in artifact_scores(SimpleNamespace(artifact=a))
    ]
    scores = list(dict.fromkeys(scores))
    records = [os.path.join(os.path.dirname(s), "run.json") for s in scores]
    return list(dict.fromkeys(scores + records + claims_decode_records()))


def claims_decode_records():
    """The decoding records (<split>.hyp.json) of the runs a decoding-time claim measures."""
    from types import SimpleNamespace

    artifacts = {
        claim["artifact"]
        for claim in claims_list()
        if any(
            claim.get("statement", {}).get(side, {}).get("quantity")
            == "decode_seconds_per_item"
            for side in ("numerator", "denominator")
        )
    }
    return [
        s.replace(".scores.json", ".hyp.json")
        for a in sorted(artifacts & set(config["artifacts"]))
        for s in artifact_scores(SimpleNamespace(artifact=a))
    ]


def claims_manifests(wildcards):
    """artifact -> manifest of the claims' artifacts (compact JSON)."""
    manifests = {a: report_manifest(config, a, SCORES) for a in claims_artifacts()}
    return json.dumps(manifests, separators=(",", ":"))
