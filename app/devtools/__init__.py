"""Developer tooling: the benchmark, its per-entry baseline, the demo and embedded servers.

``drainer bench`` and ``drainer demo`` load these modules when they run; the service
(``drainer run``, ``check``, ``config``, the operator API and the library API) never
imports this package, and the container image leaves it out. It exports nothing: import
the submodules (:mod:`~drainer.devtools.bench`, :mod:`~drainer.devtools.baseline`,
:mod:`~drainer.devtools.demo`, :mod:`~drainer.devtools.demo_view`,
:mod:`~drainer.devtools.embedded`).
"""
