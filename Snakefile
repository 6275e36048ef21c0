# prefixtune: raw data -> linearization -> training -> beam search -> official metrics -> tables and figures.
# Paper scale by default; the offline CPU demo: snakemake --configfile config/demo.yaml --cores 2
from snakemake.utils import min_version

# 9.19: the first release that reads the SLURM profile's file name, slurm/profile.v9+.yaml (snakemake PR #4087;
# 9.0-9.18 read only config[.vN+].yaml and stop with "no config.yaml found").
min_version("9.19")


# A --configfile replaces the paper config instead of being merged into it, so the demo never inherits
# paper-scale entries.
if not config:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/decode.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/smoke.smk"


# Small or network-bound steps run where snakemake runs (compute nodes often have no internet).
localrules:
    all,
    base_model,
    prepare,
    dart_tokenize,
    subsample,
    report_table,
    report_figure,
    index,
    compute,
    claims,


rule all:
    default_target: True
    input:
        expand(
            f"{REPORTS}/{{artifact}}.{{ext}}",
            artifact=config["artifacts"],
            ext=["md", "csv"],
        ),
        expand(f"{REPORTS}/{{artifact}}.{{ext}}", artifact=FIGURES, ext=["png", "pdf"]),
        f"{REPORTS}/index.md",
        f"{REPORTS}/compute.md",
        f"{REPORTS}/claims.md",
