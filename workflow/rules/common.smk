# Config validation, paths, the run grid and wildcard constraints shared by every rule.
import json
import re
from pathlib import PurePosixPath

from snakemake.utils import validate

from prefixtune.grid import artifact_runs, expand_runs, report_manifest

validate(config, "../schemas/config.schema.yaml")

RESOURCES = config["paths"]["resources"]
RESULTS = config["paths"]["results"]
REPORTS = config["paths"]["reports"]
LOGS = config["paths"]["logs"]
RUNS = expand_runs(config)
DEMO = config["scale"] == "demo"


wildcard_constraints:
    run="|".join(map(re.escape, RUNS)) or "none",
    dataset="|".join(map(re.escape, config["datasets"])),
    model="|".join(map(re.escape, config["models"])),
    split="dev|test",
    artifact="|".join(map(re.escape, config["artifacts"])),


def run_spec(wildcards):
    return RUNS[wildcards.run]


def run_resources(rule_name, key):
    """Resources of a rule for a run's base model (or the rule-wide block), from config."""

    def get(wildcards, attempt):
        block = config["resources"][rule_name]
        if "run" in wildcards.keys() and RUNS[wildcards.run]["model"] in block:
            block = block[RUNS[wildcards.run]["model"]]
        value = block.get(key, 0)
        return value * attempt if key == "runtime" else value

    return get


def run_threads(rule_name):
    """A run's threads: its ``cpus_per_task`` (torch's intra-op threads; SLURM's --cpus-per-task)."""
    resources = run_resources(rule_name, "cpus_per_task")
    return lambda wildcards: max(1, resources(wildcards, 1))


def spec_json(wildcards):
    return json.dumps(RUNS[wildcards.run], sort_keys=True)


def decoding_json(wildcards):
    """The decode settings of a run's dataset: ``decoding``, or its ``decoding_by_dataset`` entry."""
    dataset = RUNS[wildcards.run]["dataset"]
    return json.dumps(
        config.get("decoding_by_dataset", {}).get(dataset, config["decoding"]),
        sort_keys=True,
    )


def dataset_files(dataset):
    """split -> {url, sha256} or {name} entries of the dataset's configured format."""
    ds = config["datasets"][dataset]
    return ds["files"][ds["format"]]


def raw_name(entry):
    return entry.get("name") or PurePosixPath(entry["url"]).name


def raw_file(dataset, split):
    return f"{RESOURCES}/raw/{dataset}/{raw_name(dataset_files(dataset)[split])}"


def download_entry(wildcards):
    for entry in dataset_files(wildcards.dataset).values():
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


def reference_args(wildcards, input):
    if not input.reference_tokenizer:
        return ""
    n = config["decoding_by_dataset"]["xsum"].get("reference_max_tokens", 100)
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
    split = config["artifacts"][wildcards.artifact]["split"]
    return [
        SCORES.format(run=r, split=split)
        for r in artifact_runs(config, wildcards.artifact)
    ]


def artifact_manifest(wildcards):
    return json.dumps(report_manifest(config, wildcards.artifact, SCORES))
