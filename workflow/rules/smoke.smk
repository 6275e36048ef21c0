# Run this first on a new cluster: `snakemake --profile slurm gpu_smoke` (one tiny training step on a GPU node).
SMOKE_RESOURCES = {
    "runtime": 15,
    "mem_mb": 8000,
    "gpu": 1,
    "cpus_per_task": 2,
    **config["resources"].get("gpu_smoke", {}),
}
SMOKE_RESOURCES.update(gpu_request(SMOKE_RESOURCES.pop("gpu")))


rule gpu_smoke:
    output:
        f"{RESULTS}/smoke/gpu.json",
    log:
        f"{LOGS}/gpu_smoke.log",
    # a failing smoke test names a setting to fix: running it again (the profile's retries) only costs time
    retries: 0
    conda:
        "../../envs/gpu.yaml"
    threads: SMOKE_RESOURCES["cpus_per_task"]
    resources:
        **SMOKE_RESOURCES,
    params:
        allow_cpu="--allow-cpu" if DEMO else "",  # the demo has no GPU; the code path still runs
    shell:
        "prefixtune gpu-smoke --out {output:q} {params.allow_cpu} 2> {log:q}"
