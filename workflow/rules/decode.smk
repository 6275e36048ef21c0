# Beam-search decoding of a trained run, one output line per scoring unit in the official order.


rule decode:
    input:
        run_json=f"{RESULTS}/runs/{{run}}/run.json",
        trained=f"{RESULTS}/runs/{{run}}/trained",
        data=eval_data,
        model=lambda wc: f"{RESOURCES}/models/{RUNS[wc.run]['model']}",
    output:
        hyp=f"{RESULTS}/runs/{{run}}/{{split}}.hyp.txt",
        record=f"{RESULTS}/runs/{{run}}/{{split}}.hyp.json",
    log:
        f"{LOGS}/decode/{{run}}/{{split}}.log",
    conda:
        "../../envs/gpu.yaml"
    threads: run_threads("decode")
    resources:
        **gpu_request(run_resources("decode", "gpu")),
        runtime=run_resources("decode", "runtime"),
        mem_mb=run_resources("decode", "mem_mb"),
        cpus_per_task=run_resources("decode", "cpus_per_task"),
    params:
        spec=spec_json,
        decoding=decoding_json,
    shell:
        "prefixtune decode --spec {params.spec:q} --items {input.data:q}/{wildcards.split}.jsonl"
        " --base-model {input.model:q} --trained {input.trained:q} --decoding {params.decoding:q}"
        " --out {output.hyp:q} 2> {log:q}"


rule dart_tokenize:
    # The DART scorer does not preprocess hypotheses; the authors lower-cased their outputs first
    # (official_code.md §6.3), and the references are lower-cased and split on \W.
    input:
        f"{RESULTS}/runs/{{run}}/{{split}}.hyp.txt",
    output:
        f"{RESULTS}/runs/{{run}}/{{split}}.hyp.tok.txt",
    log:
        f"{LOGS}/dart_tokenize/{{run}}/{{split}}.log",
    conda:
        "../../envs/cpu.yaml"
    shell:
        "prefixtune dart-tokenize --hyp {input:q} --out {output:q} 2> {log:q}"
