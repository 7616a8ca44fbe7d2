# repalign: regenerate every figure and table of five representation-alignment papers.
#
#   snakemake --cores all                      every implemented figure at config's tier (default smoke)
#   snakemake --cores all --config tier=quick  the one-GPU tier
#   snakemake imani2022_fig10 --cores 2        one figure (rule <paper>_<artifact>)
#   snakemake lou2022 --cores all              one paper
#   snakemake check                            regression check (exits non-zero on a failed target)
#   snakemake --report report.html             every figure with its caption and targets
from snakemake.utils import min_version

min_version("8.20")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/check.smk"
include: "workflow/rules/ledger.smk"


rule all:
    default_target: True
    input:
        ALL_FIGURES,
        "reports/scorecard.html",


onsuccess:
    # A run of some figures only (no scorecard rule) still leaves a current scorecard.
    from repalign.targets import refresh_scorecard

    print(refresh_scorecard("results", PAPER_TARGETS, "reports", "figures"))
    print("Figures in figures/, results in results/")
