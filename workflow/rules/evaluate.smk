# Official-protocol scores of a run's outputs.

REFS = {"e2e": "{split}.refs.txt", "webnlg": "{split}.refs.xml", "dart": "{split}.refs"}


def hypothesis_file(wildcards):
    suffix = "hyp.tok.txt" if RUNS[wildcards.run]["dataset"] == "dart" else "hyp.txt"
    return f"{RESULTS}/runs/{wildcards.run}/{wildcards.split}.{suffix}"


rule score:
    input:
        hyp=hypothesis_file,
        data=lambda wc: f"{RESULTS}/data/{RUNS[wc.run]['dataset']}",
    output:
        f"{RESULTS}/runs/{{run}}/{{split}}.scores.json",
    params:
        dataset=lambda wc: RUNS[wc.run]["dataset"],
        refs=lambda wc, input: f"{input.data}/"
        + REFS[RUNS[wc.run]["dataset"]].format(split=wc.split),
    log:
        f"{LOGS}/score/{{run}}/{{split}}.log",
    resources:
        runtime=run_resources("score", "runtime"),
        mem_mb=run_resources("score", "mem_mb"),
    shell:
        "prefixtune score --dataset {params.dataset} --hyp {input.hyp:q} --refs {params.refs:q}"
        " --out {output:q} > {log:q} 2>&1"
