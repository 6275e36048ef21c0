# Raw data (official download, or synthetic data in the official formats for the demo) -> prepared jsonl + refs.
from pathlib import PurePosixPath


def dataset_files(dataset):
    """split -> {url, sha256} or {name} entries of the dataset's configured format."""
    ds = config["datasets"][dataset]
    return ds["files"][ds["format"]]


def raw_name(entry):
    return entry.get("name") or PurePosixPath(entry["url"]).name


def raw_file(dataset, split):
    return f"{RESOURCES}/raw/{dataset}/{raw_name(dataset_files(dataset)[split])}"


DOWNLOADED = [d for d, c in config["datasets"].items() if c["source"] == "download"]
SYNTHETIC = [d for d, c in config["datasets"].items() if c["source"] == "synthetic"]

if DOWNLOADED:

    def download_entry(wildcards):
        for entry in dataset_files(wildcards.dataset).values():
            if raw_name(entry) == wildcards.filename:
                return entry
        raise ValueError(f"no file {wildcards.filename!r} configured for {wildcards.dataset}")

    rule download:
        output:
            f"{RESOURCES}/raw/{{dataset}}/{{filename}}",
        params:
            url=lambda wc: download_entry(wc)["url"],
            sha256=lambda wc: download_entry(wc).get("sha256", ""),
        log:
            f"{LOGS}/download/{{dataset}}/{{filename}}.log",
        wildcard_constraints:
            dataset="|".join(DOWNLOADED),
        resources:
            runtime=30,
        shell:
            "prefixtune download --url {params.url:q} --sha256 {params.sha256:q} --out {output:q} 2> {log:q}"


for _dataset in SYNTHETIC:

    rule:
        name:
            f"synthesize_{_dataset}"
        output:
            train=raw_file(_dataset, "train"),
            dev=raw_file(_dataset, "dev"),
            test=raw_file(_dataset, "test"),
        params:
            dataset=_dataset,
            out_dir=f"{RESOURCES}/raw/{_dataset}",
            sizes=config["datasets"][_dataset]["synthetic"],
        log:
            f"{LOGS}/synthesize/{_dataset}.log",
        shell:
            "prefixtune synthesize --dataset {params.dataset} --out-dir {params.out_dir:q}"
            " --seed {params.sizes[seed]} --n-train {params.sizes[n_train]}"
            " --n-dev {params.sizes[n_dev]} --n-test {params.sizes[n_test]} 2> {log:q}"


rule prepare:
    input:
        train=lambda wc: raw_file(wc.dataset, "train"),
        dev=lambda wc: raw_file(wc.dataset, "dev"),
        test=lambda wc: raw_file(wc.dataset, "test"),
    output:
        directory(f"{RESULTS}/data/{{dataset}}"),
    params:
        e2e_format=lambda wc: config["datasets"][wc.dataset]["format"]
        if wc.dataset == "e2e"
        else "src1",
        first_entry_bug=lambda wc: (
            "--webnlg-first-entry-bug"
            if config["datasets"][wc.dataset].get("first_entry_bug", False)
            else "--no-webnlg-first-entry-bug"
        ),
    log:
        f"{LOGS}/prepare/{{dataset}}.log",
    shell:
        "prefixtune prepare --dataset {wildcards.dataset} --train {input.train:q} --dev {input.dev:q}"
        " --test {input.test:q} --out-dir {output:q} --e2e-format {params.e2e_format}"
        " {params.first_entry_bug} 2> {log:q}"
