"""Load torch and onnxruntime before usearch, when they are installed.

usearch's compiled module (2.26) links its own copy of libstdc++ statically and exports that
copy's ``std::locale`` facet ids as process-wide unique symbols (``nm -D`` shows them as
``u``). A C++ library loaded *after* it binds to those ids and formats numbers through the
wrong facets: torch prints ``aten::slice.Tensor(Tensor(a) self, int dim=`` with the rest cut
off (so its ONNX exporter fails and error messages lose their numbers), ONNX Runtime rejects
valid models and, from 1.23, segfaults on import. Loaded *before* usearch, they bind to the
system libstdc++ as they should (the fix other packages with a static libstdc++ use too, e.g.
pytorch/pytorch#109923).

Every module that imports usearch imports this module first (``import workbench`` alone loads
neither). It costs about a second (torch's import), which the embedders pay anyway.
"""

from __future__ import annotations

import importlib
import sys

#: C++ libraries that must be loaded before usearch's compiled module.
PRELOAD = ("torch", "onnxruntime")
#: The compiled module whose static libstdc++ causes the trouble.
USEARCH_MODULE = "usearch.compiled"


def preload() -> list[str]:
    """Import each installed module of :data:`PRELOAD` not yet loaded, if usearch is not.

    Returns
    -------
    list of str
        The modules this call imported (none when usearch was loaded already: then it is too
        late, and importing them here would only hide that).
    """
    if USEARCH_MODULE in sys.modules:
        return []
    done = []
    for name in PRELOAD:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - absent or broken: an optional backend
            continue
        done.append(name)
    return done


preload()
