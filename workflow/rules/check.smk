# The scorecard (end of `rule all`) and the regression check (`snakemake check`).


rule scorecard:
    input:
        ALL_RESULTS,
        PAPER_TARGETS,
    output:
        report("reports/scorecard.md", caption="../report/scorecard.rst", category="Scorecard"),
        "reports/scorecard.json",
    localrule: True
    shell:
        "python -m repalign check --no-fail --results results --targets {PAPER_TARGETS} --out reports"


rule check:
    """Evaluate whatever results exist; fail when any evaluated target fails. Never trains."""
    localrule: True
    shell:
        "python -m repalign check --results results --targets {PAPER_TARGETS} --out reports"
