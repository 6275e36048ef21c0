# One training job per run of the grid. Checkpoints live outside the declared outputs, so a retried or
# preempted job resumes; the trainer checkpoints and exits before the job's time limit (or on SLURM's SIGTERM).
# Full weights (FINETUNE, FT-TOP) are temporary: deleted once every split is decoded, unless
# training.keep_full_weights; the small trained parameters of the other methods are protected when
# training.protect_trained (read-only: retraining one needs a deliberate delete).


localrules:
    valset,


rule valset:
    # The first N items of a prepared dev file: the authors' XSUM validation set (n_val 500), from the full
    # validation split ("full") or an extrapolation split's dev.
    input:
        valset_source,
    output:
        f"{VALSETS}/{{dataset}}/{{source}}/dev.first{{n}}.jsonl",
    log:
        f"{LOGS}/valset/{{dataset}}/{{source}}/first{{n}}.log",
    wildcard_constraints:
        source="full|news_sports|within_news",
        n="[0-9]+",
    conda:
        "../../envs/cpu.yaml"
    shell:
        "prefixtune valset --items {input:q}/dev.jsonl --first {wildcards.n} --out {output:q} 2> {log:q}"


rule train:
    input:
        data=train_data,
        model=lambda wc: f"{RESOURCES}/models/{RUNS[wc.run]['model']}",
        dev=selection_input,
    output:
        trained=trained_output(full_weights=False),
        run_json=f"{RESULTS}/runs/{{run}}/run.json",
    log:
        f"{LOGS}/train/{{run}}.log",
    wildcard_constraints:
        run=run_pattern(full_weights=False),
    conda:
        "../../envs/gpu.yaml"
    threads: run_threads("train")
    resources:
        **gpu_request(run_resources("train", "gpu")),
        runtime=run_resources("train", "runtime"),
        mem_mb=run_resources("train", "mem_mb"),
        cpus_per_task=run_resources("train", "cpus_per_task"),
    params:
        spec=spec_json,
        checkpoints=f"{RESULTS}/checkpoints/{{run}}",
        checkpoint_every=config["training"]["checkpoint_every"],
        selection=selection_args,
    shell:
        "prefixtune train --spec {params.spec:q} --train {input.data:q}/train.jsonl --base-model {input.model:q}"
        " --out {output.trained:q} --run-json {output.run_json:q} --checkpoint-dir {params.checkpoints:q}"
        " --checkpoint-every {params.checkpoint_every} --time-budget-min {resources.runtime} {params.selection}"
        " --log {log:q} 2> {log:q}"


use rule train as train_full_weights with:
    output:
        trained=trained_output(full_weights=True),
        run_json=f"{RESULTS}/runs/{{run}}/run.json",
    wildcard_constraints:
        run=run_pattern(full_weights=True),
