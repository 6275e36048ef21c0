# Paper artifacts: each cell shows the reproduced value beside the published one.

SCORES = f"{RESULTS}/runs/{{run}}/{{split}}.scores.json"


def artifact_scores(wildcards):
    split = config["artifacts"][wildcards.artifact]["split"]
    return [
        SCORES.format(run=r, split=split)
        for r in artifact_runs(config, wildcards.artifact)
    ]


def artifact_manifest(wildcards):
    return json.dumps(report_manifest(config, wildcards.artifact, SCORES))


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
