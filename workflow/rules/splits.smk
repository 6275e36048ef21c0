# XSUM extrapolation splits (paper Table 3 / ACL Table 4): news-to-sports and within-news, rebuilt from the raw
# EdinburghNLP XSum files and the official split ids (official_code.md §1.5; prefixtune.data.xsum_topics).
# The paper config downloads both files (rule download: common.smk's download_entry knows them); the demo
# synthesizes them in the same layout. Each split is a prepared-dataset folder plus split.json.
XSUM_EXTRAPOLATION = config["datasets"].get("xsum", {}).get("extrapolation")
# the names the synthesizer writes (prefixtune.data.synthetic_xsum.RAW_TARBALL / RAW_SPLIT_IDS)
XSUM_RAW_NAMES = {
    "raw": "XSUM-EMNLP18-Summary-Data-Original.tar.gz",
    "split_ids": "XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json",
}
XSUM_RAW_FILES = {
    key: f"{RESOURCES}/raw/xsum/{raw_name(entry)}"
    for key, entry in (XSUM_EXTRAPOLATION or {}).items()
    if key in XSUM_RAW_NAMES
}


if XSUM_EXTRAPOLATION and config["datasets"]["xsum"]["source"] == "synthetic":
    if "synthetic" not in XSUM_EXTRAPOLATION:
        raise ValueError(
            "datasets.xsum.extrapolation.synthetic: the synthetic corpus's sizes are missing"
        )
    for _key, _name in XSUM_RAW_NAMES.items():
        if raw_name(XSUM_EXTRAPOLATION[_key]) != _name:
            raise ValueError(
                f"datasets.xsum.extrapolation.{_key}: the synthesizer writes {_name!r}"
            )

    rule synthesize_xsum_raw:
        output:
            raw=XSUM_RAW_FILES["raw"],
            split_ids=XSUM_RAW_FILES["split_ids"],
        log:
            f"{LOGS}/synthesize/xsum_raw.log",
        conda:
            "../../envs/cpu.yaml"
        params:
            out_dir=lambda wildcards, output: PurePosixPath(output.raw).parent,
            sizes=XSUM_EXTRAPOLATION["synthetic"],
        shell:
            "prefixtune synthesize --dataset xsum_raw --out-dir {params.out_dir:q}"
            " --seed {params.sizes[seed]} --n-train {params.sizes[n_train]}"
            " --n-dev {params.sizes[n_dev]} --n-test {params.sizes[n_test]} 2> {log:q}"


if XSUM_EXTRAPOLATION:

    rule xsum_split:
        input:
            raw=XSUM_RAW_FILES["raw"],
            split_ids=XSUM_RAW_FILES["split_ids"],
        output:
            directory(f"{RESULTS}/splits/xsum/{{split}}"),
        log:
            f"{LOGS}/splits/xsum/{{split}}.log",
        wildcard_constraints:
            split="news_sports|within_news",
        conda:
            "../../envs/cpu.yaml"
        resources:
            runtime=60,
            mem_mb=8000,  # the paper's tarball: ~226k articles held in memory
        params:
            seed=XSUM_EXTRAPOLATION["seed"],
            test_cap=XSUM_EXTRAPOLATION["test_cap"],
            test_from=XSUM_EXTRAPOLATION["test_from"],
            line_join=XSUM_EXTRAPOLATION["line_join"],
        shell:
            "prefixtune xsum-split --raw {input.raw:q} --split-ids {input.split_ids:q}"
            " --kind {wildcards.split} --seed {params.seed} --test-cap {params.test_cap}"
            " --test-from {params.test_from} --line-join {params.line_join}"
            " --out-dir {output:q} 2> {log:q}"
