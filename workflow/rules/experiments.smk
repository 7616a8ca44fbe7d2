# Three generic rules serve every paper: train a shared model, run an artifact's
# experiment, plot its figure. Wildcards are constrained to registered steps, and each
# job's resources come from the step's per-tier Resources in repalign.experiments.
#
# Outputs of train/run are update(): snakemake leaves the old file in place while the job
# runs (and restores it if the job fails), so the runner can refuse to replace a result
# computed with data by one that lacks it. params.data_key re-runs a step once data it
# lacked has appeared (see repalign.availability).


wildcard_constraints:
    paper="|".join(sorted({p for p, _ in ARTIFACTS} | {p for p, _ in MODELS})) or "none",
    name="[A-Za-z0-9_]+",


rule train_model:
    output:
        update("results/{paper}/models/{name}.pt"),
    params:
        tier=TIER,
        options=STEP_OPTIONS,
        data_options=untracked(DATA_OPTIONS),
        gpu_slot=GPU_SLOT,
        data_key=data_key("model"),
    log:
        "logs/{paper}/models/{name}.log",
    conda:
        CONDA_ENV
    threads: step_resources(MODELS, "cpus")
    resources:
        runtime=step_resources(MODELS, "runtime_min"),
        mem_mb=step_resources(MODELS, "mem_mb"),
        gpu=step_resources(MODELS, "gpu"),
        # sbatch --cpus-per-task: the registry's cpus, even where --cores caps threads
        cpus_per_task=step_resources(MODELS, "cpus"),
        gpu_slot=0,  # 1 under profiles/local-gpu: pin the job to its own GPU(s)
    shell:
        "{params.gpu_slot} --enable {resources.gpu_slot} {resources.gpu} -- "
        "python -m repalign train {wildcards.paper} {wildcards.name} {params.options} {params.data_options} "
        "--data-key={params.data_key:q} --out {output} 2> >(tee {log} >&2)"


rule run_artifact:
    input:
        unpack(needed_models),
    output:
        json=update("results/{paper}/{name}.json"),
        npz=update("results/{paper}/{name}.npz"),
    params:
        tier=TIER,
        options=STEP_OPTIONS,
        data_options=untracked(DATA_OPTIONS),
        gpu_slot=GPU_SLOT,
        inputs=input_options,
        data_key=data_key("artifact"),
    log:
        "logs/{paper}/{name}.log",
    conda:
        CONDA_ENV
    threads: step_resources(ARTIFACTS, "cpus")
    resources:
        runtime=step_resources(ARTIFACTS, "runtime_min"),
        mem_mb=step_resources(ARTIFACTS, "mem_mb"),
        gpu=step_resources(ARTIFACTS, "gpu"),
        # sbatch --cpus-per-task: the registry's cpus, even where --cores caps threads
        cpus_per_task=step_resources(ARTIFACTS, "cpus"),
        gpu_slot=0,  # 1 under profiles/local-gpu: pin the job to its own GPU(s)
    shell:
        "{params.gpu_slot} --enable {resources.gpu_slot} {resources.gpu} -- "
        "python -m repalign run {wildcards.paper} {wildcards.name} {params.options} {params.data_options} "
        "{params.inputs} --data-key={params.data_key:q} --out {output.json} 2> >(tee {log} >&2)"


rule plot_artifact:
    input:
        "results/{paper}/{name}.json",
    output:
        png=report(
            "figures/{paper}/{name}.png",
            caption="../report/figure.rst",
            category="{paper}",
            labels={"paper": "{paper}", "artifact": "{name}"},
        ),
        pdf="figures/{paper}/{name}.pdf",
    params:
        caption=caption_text,
    log:
        "logs/{paper}/{name}.plot.log",
    conda:
        CONDA_ENV
    localrule: True
    shell:
        "python -m repalign plot {wildcards.paper} {wildcards.name} --result {input} --out {output.png} 2> {log}"
