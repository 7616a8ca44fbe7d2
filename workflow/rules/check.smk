# The scorecard (end of `rule all`) and the regression check (`snakemake check`).


rule scorecard:
    input:
        results=ALL_RESULTS,
        targets=PAPER_TARGETS,
    output:
        report("reports/scorecard.md", caption="../report/scorecard.rst", category="Scorecard"),
        "reports/scorecard.json",
    log:
        "logs/scorecard.log",
    conda:
        CONDA_ENV
    localrule: True
    shell:
        "python -m repalign check --no-fail --results results --targets {input.targets} "
        "--out reports 2>&1 | tee {log}"


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
        "python -m repalign check --results results --targets {params.targets} --out reports "
        "2>&1 | tee {log}"
