# Official-protocol scores of a run's outputs.


rule score:
    input:
        hyp=hypothesis_file,
        data=lambda wc: f"{RESULTS}/data/{RUNS[wc.run]['dataset']}",
    output:
        f"{RESULTS}/runs/{{run}}/{{split}}.scores.json",
    log:
        f"{LOGS}/score/{{run}}/{{split}}.log",
    conda:
        "../../envs/prefixtune.yaml"
    resources:
        runtime=run_resources("score", "runtime"),
        mem_mb=run_resources("score", "mem_mb"),
    params:
        dataset=lambda wc: RUNS[wc.run]["dataset"],
        refs=lambda wc, input: f"{input.data}/"
        + REFS[RUNS[wc.run]["dataset"]].format(split=wc.split),
    shell:
        "prefixtune score --dataset {params.dataset} --hyp {input.hyp:q} --refs {params.refs:q}"
        " --out {output:q} > {log:q} 2>&1"
