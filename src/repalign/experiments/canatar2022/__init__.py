"""canatar2022: A Kernel Analysis of Feature Learning in Deep Neural Networks (Canatar, Pehlevan; 2022).

- ``kernels``: CKA, eigenvalues and cumulative power (Eqs. 3, 4) of layer kernels in feature space.
- ``resnet``: the 48-configuration ResNet-11 grid on CIFAR-10, Figs 1, 2, 6 and Table I.
- ``spectra``: layers 9 and 10 of the worst, best and high-CKA models of the grid, Figs 3, 4, 5.
- ``ffnn``: the traced NTK (Eq. 8) of a 4-hidden-layer FFNN on MNIST during training, Figs 7, 8.
"""

from repalign.experiments.canatar2022 import ffnn, resnet, spectra  # noqa: F401  (registers steps)
