"""imani2022: Representation Alignment in Neural Networks (Imani, Hu, White; TMLR 2022)."""

from repalign.experiments.imani2022 import peaks  # noqa: F401  (registers steps)
from repalign.experiments.imani2022 import convergence, ct_features, layers, pretrained, spectra, sweeps, toy  # noqa: F401
from repalign.experiments.imani2022 import handcrafted  # noqa: F401
from repalign.experiments.imani2022 import office31  # noqa: F401
from repalign.experiments.imani2022 import imagenet_halves, task_similarity  # noqa: F401
