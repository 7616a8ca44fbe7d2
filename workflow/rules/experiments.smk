# Three generic rules serve every paper: train a shared model, run an artifact's
# experiment, plot its figure. Wildcards are constrained to registered steps, and each
# job's resources come from the step's per-tier Resources in repalign.experiments.


wildcard_constraints:
    paper="|".join(sorted({p for p, _ in ARTIFACTS} | {p for p, _ in MODELS})) or "none",
    name="[A-Za-z0-9_]+",


rule train_model:
    output:
        "results/{paper}/models/{name}.pt",
    params:
        tier=TIER,
        options=STEP_OPTIONS,
        gpu_slot=GPU_SLOT,
    log:
        "logs/{paper}/models/{name}.log",
    conda:
        CONDA_ENV
    threads: step_resources(MODELS, "cpus")
    resources:
        runtime=step_resources(MODELS, "runtime_min"),
        mem_mb=step_resources(MODELS, "mem_mb"),
        gpu=step_resources(MODELS, "gpu"),
        gpu_slot=0,  # 1 under profiles/local-gpu: pin the job to its own GPU(s)
    shell:
        "{params.gpu_slot} --enable {resources.gpu_slot} {resources.gpu} -- "
        "python -m repalign train {wildcards.paper} {wildcards.name} {params.options} "
        "--out {output} 2> >(tee {log} >&2)"


rule run_artifact:
    input:
        unpack(needed_models),
    output:
        json="results/{paper}/{name}.json",
        npz="results/{paper}/{name}.npz",
    params:
        tier=TIER,
        options=STEP_OPTIONS,
        gpu_slot=GPU_SLOT,
        inputs=input_options,
    log:
        "logs/{paper}/{name}.log",
    conda:
        CONDA_ENV
    threads: step_resources(ARTIFACTS, "cpus")
    resources:
        runtime=step_resources(ARTIFACTS, "runtime_min"),
        mem_mb=step_resources(ARTIFACTS, "mem_mb"),
        gpu=step_resources(ARTIFACTS, "gpu"),
        gpu_slot=0,  # 1 under profiles/local-gpu: pin the job to its own GPU(s)
    shell:
        "{params.gpu_slot} --enable {resources.gpu_slot} {resources.gpu} -- "
        "python -m repalign run {wildcards.paper} {wildcards.name} {params.options} "
        "{params.inputs} --out {output.json} 2> >(tee {log} >&2)"


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
