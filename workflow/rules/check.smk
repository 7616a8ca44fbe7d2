# The scorecard (end of `rule all`) and the regression check (`snakemake check`).
# Both write reports/scorecard.{md,json,html}; the HTML page (figures beside their targets)
# is the report item, so clicking it in `snakemake --report` shows it.


rule scorecard:
    input:
        results=ALL_RESULTS,
        figures=ALL_FIGURES,  # the HTML page embeds them
        targets=PAPER_TARGETS,
    output:
        report("reports/scorecard.html", caption="../report/scorecard.rst", category="Scorecard"),
        "reports/scorecard.md",
        "reports/scorecard.json",
    log:
        "logs/scorecard.log",
    conda:
        CONDA_ENV
    localrule: True
    shell:
        # validate first: a targets file that went bad since the workflow was parsed stops here
        "python -m repalign check --validate-only --targets {input.targets} 2>&1 | tee {log} && "
        "python -m repalign check --no-fail --results results --figures figures "
        "--targets {input.targets} --out reports 2>&1 | tee -a {log}"


rule check:
    """Evaluate whatever results exist; fail when any evaluated target fails. Never trains."""
    params:
        targets=PAPER_TARGETS,
    log:
        "logs/check.log",
    conda:
        CONDA_ENV
    localrule: True
    shell:
        "python -m repalign check --results results --figures figures --targets {params.targets} "
        "--out reports 2>&1 | tee {log}"
