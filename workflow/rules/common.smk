# Config validation, paths, the run grid and wildcard constraints shared by every rule.
import json
import re

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


def spec_json(wildcards):
    return json.dumps(RUNS[wildcards.run], sort_keys=True)
