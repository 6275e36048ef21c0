# Official-protocol scores of a run's outputs.


rule score:
    input:
        hyp=hypothesis_file,
        data=eval_data,
        reference_tokenizer=reference_tokenizer,
        metric_models=metric_models_input,
    output:
        f"{RESULTS}/runs/{{run}}/{{split}}.scores.json",
    log:
        f"{LOGS}/score/{{run}}/{{split}}.log",
    conda:
        "../../envs/cpu.yaml"
    resources:
        runtime=run_resources("score", "runtime"),
        mem_mb=run_resources("score", "mem_mb"),
    params:
        dataset=lambda wc: RUNS[wc.run]["dataset"],
        refs=lambda wc, input: f"{input.data}/"
        + REFS[RUNS[wc.run]["dataset"]].format(split=wc.split),
        reference_args=reference_args,
        model_metrics=model_metrics_args,
    shell:
        "prefixtune score --dataset {params.dataset} --hyp {input.hyp:q} --refs {params.refs:q}"
        " {params.reference_args} {params.model_metrics} --out {output:q} > {log:q} 2>&1"


rule xsum_validation_subset:
    # ACL Table 7: the first N validation articles (rule valset) with their references, as a prepared folder
    input:
        f"{VALSETS}/xsum/full/dev.first{{n}}.jsonl",
    output:
        directory(f"{RESULTS}/data/xsum_validation_first{{n}}"),
    log:
        f"{LOGS}/xsum_validation_subset/first{{n}}.log",
    wildcard_constraints:
        n="[0-9]+",
    conda:
        "../../envs/cpu.yaml"
    shell:
        "prefixtune xsum-validation-subset --valset {input:q} --first {wildcards.n} --out-dir {output:q} 2> {log:q}"


if MODEL_METRICS == "tiny":

    rule metric_models:
        # Tiny DistilBERT / RoBERTa / BLEURT-style models with random weights: the demo runs DART's model-based
        # metrics offline (their values mean nothing).
        output:
            directory(METRIC_MODELS),
        log:
            f"{LOGS}/metric_models.log",
        conda:
            "../../envs/cpu.yaml"
        shell:
            "prefixtune metric-models --out-dir {output:q} 2> {log:q}"
