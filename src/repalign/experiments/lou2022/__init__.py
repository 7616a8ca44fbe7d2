"""lou2022: Feature Learning and Signal Propagation in Deep Neural Networks (Lou, Mingard, Nam, Hayou; ICML 2022).

- ``theory``: the infinite-width equilibrium layer l* = Θ(L^(3/5)) and the information-loss rates.
- ``sweep``: the depth sweep of Fig 3 and Tables 1–3.
- ``hierarchy``: the alignment hierarchy during training, Figs 1, 2, 7, 9, 10.
- ``frozen``: networks with every layer but the last frozen, Fig 18 and Table 4.
- ``lfm``: layer-wise feature maximisation (Algorithm 1) against end-to-end training, Figs 16, 17.
- ``spectra``: eigenvalues and stable rank of C Ψ_lᵀΨ_l C for VGG19 with and without random labels, Fig 19.
- ``grids``: batch size × learning rate grids, Fig 4 and Figs 11–15.
- ``collinearity``: Approximation 1, −corr(Ỹ, w_t) early in training, Fig 6.
- ``hw_spectrum``: the output Hessian H_w, update correlation and top-eigenvector energy per layer, Fig 5.
"""

from repalign.experiments.lou2022 import collinearity, frozen, grids, hierarchy, hw_spectrum, lfm, spectra, sweep, theory  # noqa: F401  (registers steps)
