# Base models: a hub checkpoint saved locally, or the offline tiny GPT-2; both loaded with from_pretrained.


rule base_model:
    output:
        directory(f"{RESOURCES}/models/{{model}}"),
    log:
        f"{LOGS}/base_model/{{model}}.log",
    priority: 50  # everything downstream waits for the base models
    conda:
        "../../envs/cpu.yaml"
    threads: config["resources"]["base_model"].get("cpus_per_task", 1)
    resources:
        runtime=run_resources("base_model", "runtime"),
        mem_mb=run_resources("base_model", "mem_mb"),
    params:
        args=base_model_args,
    shell:
        "prefixtune base-model {params.args} --out {output:q} 2> {log:q}"
