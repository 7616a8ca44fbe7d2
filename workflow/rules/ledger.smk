# The compute ledger: docs/compute.md from the provenance of whatever results exist.


rule ledger:
    """Tier, device, wall time, peak memory and throughput of every step run; never trains."""
    log:
        "logs/ledger.log",
    conda:
        CONDA_ENV
    localrule: True
    shell:
        "python -m repalign ledger --results results --out docs/compute.md 2>&1 | tee {log}"
