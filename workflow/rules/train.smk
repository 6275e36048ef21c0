# One training job per run of the grid. Checkpoints live outside the declared outputs, so a retried or
# preempted job resumes; the trainer checkpoints and exits before the job's time limit.


rule train:
    input:
        data=train_data,
        model=lambda wc: f"{RESOURCES}/models/{RUNS[wc.run]['model']}",
    output:
        trained=directory(f"{RESULTS}/runs/{{run}}/trained"),
        run_json=f"{RESULTS}/runs/{{run}}/run.json",
    log:
        f"{LOGS}/train/{{run}}.log",
    conda:
        "../../envs/prefixtune.yaml"
    threads: run_threads("train")
    resources:
        runtime=run_resources("train", "runtime"),
        mem_mb=run_resources("train", "mem_mb"),
        gpu=run_resources("train", "gpu"),
        cpus_per_task=run_resources("train", "cpus_per_task"),
    params:
        spec=spec_json,
        checkpoints=f"{RESULTS}/checkpoints/{{run}}",
        checkpoint_every=config["training"]["checkpoint_every"],
    shell:
        "prefixtune train --spec {params.spec:q} --train {input.data:q}/train.jsonl --base-model {input.model:q}"
        " --out {output.trained:q} --run-json {output.run_json:q} --checkpoint-dir {params.checkpoints:q}"
        " --checkpoint-every {params.checkpoint_every} --time-budget-min {resources.runtime} 2> {log:q}"
