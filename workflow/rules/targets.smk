# Named targets: `snakemake <paper>` and `snakemake <paper>_<artifact>`.

for _paper in PAPERS:

    rule:
        name:
            _paper
        localrule: True
        input:
            [figure_path(p, a) for p, a in sorted(ARTIFACTS) if p == _paper],


for _paper, _artifact in sorted(ARTIFACTS):

    rule:
        name:
            f"{_paper}_{_artifact}"
        localrule: True
        input:
            figure_path(_paper, _artifact),
