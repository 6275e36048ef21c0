# Paper artifacts: tables (each cell reproduced beside the published one) and figures, plus reports/index.md.
TABLES = [
    a for a, s in config["artifacts"].items() if s.get("kind", "table") == "table"
]
FIGURES = [a for a, s in config["artifacts"].items() if s.get("kind") == "figure"]
REPORT_SHELL = (
    "prefixtune report --artifact {wildcards.artifact} --manifest {params.manifest:q}"
    " --paper {input.paper:q} --version {params.version} --out-dir {params.out_dir:q}"
    " --tolerance {params.tolerance:q} --config-hash {params.config_hash}"
    " --claims {input.claims:q} --claims-settings {params.claims:q} {params.demo} 2> {log:q}"
)


rule report_table:
    input:
        scores=artifact_scores,
        paper=config["paper"]["results_csv"],
        claims=CLAIMS["file"],
    output:
        md=report(
            f"{REPORTS}/{{artifact}}.md",
            caption="../report/table.rst",
            category="Tables",
            labels={"artifact": "{artifact}"},
        ),
        csv=f"{REPORTS}/{{artifact}}.csv",
        status=f"{REPORTS}/{{artifact}}.json",
    log:
        f"{LOGS}/report/{{artifact}}.log",
    wildcard_constraints:
        artifact="|".join(map(re.escape, TABLES)) or "none",
    conda:
        "../../envs/cpu.yaml"
    params:
        manifest=artifact_manifest,
        version=config["paper"]["version"],
        demo="--demo" if DEMO else "",
        out_dir=lambda wc, output: os.path.dirname(output.csv),
        tolerance=json.dumps(config.get("report", {}).get("tolerance", {})),
        config_hash=artifact_config_hash,
        caption=artifact_caption,
        claims=CLAIMS_SETTINGS,
    shell:
        REPORT_SHELL


rule report_figure:
    input:
        scores=artifact_scores,
        hyps=artifact_qualitative_inputs,
        paper=config["paper"]["results_csv"],
        claims=CLAIMS["file"],
    output:
        png=report(
            f"{REPORTS}/{{artifact}}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"artifact": "{artifact}"},
        ),
        pdf=f"{REPORTS}/{{artifact}}.pdf",
        md=f"{REPORTS}/{{artifact}}.md",
        csv=f"{REPORTS}/{{artifact}}.csv",
        status=f"{REPORTS}/{{artifact}}.json",
    log:
        f"{LOGS}/report/{{artifact}}.log",
    wildcard_constraints:
        artifact="|".join(map(re.escape, FIGURES)) or "none",
    conda:
        "../../envs/cpu.yaml"
    params:
        manifest=artifact_manifest,
        version=config["paper"]["version"],
        demo="--demo" if DEMO else "",
        out_dir=lambda wc, output: os.path.dirname(output.csv),
        tolerance="{}",
        config_hash=artifact_config_hash,
        caption=artifact_caption,
        claims=CLAIMS_SETTINGS,
    shell:
        REPORT_SHELL


rule claims:
    # Every claim of the paper with its verdict, from the scores files and run records of the artifacts the
    # claims rest on (no model is loaded).
    input:
        claims=CLAIMS["file"],
        paper=config["paper"]["results_csv"],
        results=claims_inputs,
    output:
        md=report(
            f"{REPORTS}/claims.md", caption="../report/claims.rst", category="Index"
        ),
        csv=f"{REPORTS}/claims.csv",
        json=f"{REPORTS}/claims.json",
    log:
        f"{LOGS}/report/claims.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        manifests=claims_manifests,
        version=config["paper"]["version"],
        settings=CLAIMS_SETTINGS,
        demo="--demo" if DEMO else "",
    shell:
        "prefixtune claims --claims {input.claims:q} --manifests {params.manifests:q} --paper {input.paper:q}"
        " --version {params.version} --settings {params.settings:q} --out {output.md:q} {params.demo}"
        " 2> {log:q}"


rule index:
    input:
        expand(f"{REPORTS}/{{artifact}}.json", artifact=config["artifacts"]),
    output:
        report(f"{REPORTS}/index.md", caption="../report/index.rst", category="Index"),
    log:
        f"{LOGS}/report/index.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        demo="--demo" if DEMO else "",
    shell:
        "prefixtune index --status {input:q} --out {output:q} {params.demo} 2> {log:q}"


rule compute:
    # The compute ledger: wall time and GPU-hours per run and per artifact, from the jobs' own records.
    input:
        expand(f"{REPORTS}/{{artifact}}.json", artifact=config["artifacts"]),
    output:
        md=report(
            f"{REPORTS}/compute.md", caption="../report/compute.rst", category="Index"
        ),
        json=f"{REPORTS}/compute.json",
    log:
        f"{LOGS}/report/compute.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        demo="--demo" if DEMO else "",
    shell:
        "prefixtune compute --status {input:q} --out {output.md:q} {params.demo} 2> {log:q}"
