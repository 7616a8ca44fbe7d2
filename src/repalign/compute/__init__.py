"""Compute as a measured property of the suite: the ledger, the pre-launch estimate, the GPU runner.

- ``rows``: one ledger row per step run, read from the provenance in result and model files;
- ``ledger``: ``python -m repalign ledger`` writes ``docs/compute.md`` from those rows;
- ``estimate``: ``python -m repalign estimate`` projects a tier's device-hours from them;
- ``gpu_run``: ``python -m repalign gpu-run`` runs a list of steps within a time budget.
"""
