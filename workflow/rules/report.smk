# Paper artifacts: each cell shows the reproduced value beside the published one.


rule report:
    input:
        scores=artifact_scores,
        paper=config["paper"]["results_csv"],
    output:
        md=f"{REPORTS}/{{artifact}}.md",
        csv=f"{REPORTS}/{{artifact}}.csv",
    log:
        f"{LOGS}/report/{{artifact}}.log",
    conda:
        "../../envs/prefixtune.yaml"
    params:
        manifest=artifact_manifest,
        version=config["paper"]["version"],
        demo="--demo" if DEMO else "",
    shell:
        "prefixtune report --artifact {wildcards.artifact} --manifest {params.manifest:q}"
        " --paper {input.paper:q} --version {params.version} --out-md {output.md:q}"
        " --out-csv {output.csv:q} {params.demo} 2> {log:q}"
