# Raw data (official download, or synthetic data in the official formats for the demo) -> prepared jsonl + refs.
DOWNLOADED = [d for d, c in config["datasets"].items() if c["source"] == "download"]
SYNTHETIC = [d for d, c in config["datasets"].items() if c["source"] == "synthetic"]

if DOWNLOADED:

    # Compute nodes often have no internet.
    localrules:
        download,

    rule download:
        output:
            f"{RESOURCES}/raw/{{dataset}}/{{filename}}",
        log:
            f"{LOGS}/download/{{dataset}}/{{filename}}.log",
        wildcard_constraints:
            dataset="|".join(DOWNLOADED),
        conda:
            "../../envs/cpu.yaml"
        resources:
            runtime=30,
        params:
            url=lambda wc: download_entry(wc)["url"],
            sha256=lambda wc: download_entry(wc).get("sha256", ""),
        shell:
            "prefixtune download --url {params.url:q} --sha256 {params.sha256:q} --out {output:q} 2> {log:q}"


for _dataset in SYNTHETIC:

    rule:
        name:
            f"synthesize_{_dataset}"
        output:
            # XSUM's three splits share one file (the legacy tarball)
            sorted({raw_file(_dataset, split) for split in ("train", "dev", "test")}),
        log:
            f"{LOGS}/synthesize/{_dataset}.log",
        conda:
            "../../envs/cpu.yaml"
        params:
            dataset=_dataset,
            out_dir=PurePosixPath(raw_file(_dataset, "train")).parent,
            sizes=config["datasets"][_dataset]["synthetic"],
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
    log:
        f"{LOGS}/prepare/{{dataset}}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        e2e_format=lambda wc: (
            config["datasets"][wc.dataset]["format"] if wc.dataset == "e2e" else "src1"
        ),
        first_entry_bug=lambda wc: (
            "--webnlg-first-entry-bug"
            if config["datasets"][wc.dataset].get("first_entry_bug", False)
            else "--no-webnlg-first-entry-bug"
        ),
    shell:
        "prefixtune prepare --dataset {wildcards.dataset} --train {input.train:q} --dev {input.dev:q}"
        " --test {input.test:q} --out-dir {output:q} --e2e-format {params.e2e_format}"
        " {params.first_entry_bug} 2> {log:q}"


rule subsample:
    input:
        f"{RESULTS}/data/{{dataset}}",
    output:
        directory(f"{RESULTS}/subsets/{{dataset}}/{{subset}}"),
    log:
        f"{LOGS}/subsample/{{dataset}}/{{subset}}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        size=subset_args,
        seed=lambda wc: SUBSET_TAG.fullmatch(wc.subset).group(3),
    shell:
        "prefixtune subsample --prepared {input:q} {params.size} --data-seed {params.seed}"
        " --out-dir {output:q} 2> {log:q}"
