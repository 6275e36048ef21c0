# Paper artifacts: each cell shows the reproduced value beside the published one.

SCORES = f"{RESULTS}/runs/{{run}}/{{split}}.scores.json"


rule report_table1:
    input:
        scores=lambda wc: [
            SCORES.format(run=r, split=config["artifacts"]["table1"]["split"])
            for r in artifact_runs(config, "table1")
        ],
        paper=config["paper"]["results_csv"],
    output:
        md=f"{REPORTS}/table1.md",
        csv=f"{REPORTS}/table1.csv",
    log:
        f"{LOGS}/report/table1.log",
    conda:
        "../../envs/prefixtune.yaml"
    params:
        manifest=json.dumps(report_manifest(config, "table1", SCORES)),
        version=config["paper"]["version"],
        demo="--demo" if DEMO else "",
    shell:
        "prefixtune report --artifact table1 --manifest {params.manifest:q} --paper {input.paper:q}"
        " --version {params.version} --out-md {output.md:q} --out-csv {output.csv:q} {params.demo} 2> {log:q}"
