"""autospace-nni: AutoSpace (Zhou et al., ICCV 2021) for Microsoft NNI 3.0.

The public API (everything else is importable from its submodule, but may change):

Learning a space
    ``AutoSpace``          the NNI strategy that evolves the learned space (use it in a ``NasExperiment``)
    ``ExplorationSpace``   the NNI model space AutoSpace evolves: a skeleton with one cell choice per block
    ``adopt``              turn any NNI ``ModelSpace`` into one AutoSpace can evolve (its LayerChoices become
                           groups)
    ``make_evaluator``     the Lightning classification evaluator for a dataset
    ``load_dataset``       the bundled datasets (sklearn digits, Fashion-MNIST), split train / val / test
Using a space
    ``LearnedSpace``       a learned space: load / save its JSON, ``.model_space()`` for NNI's strategies,
                           ``.cost(sample)``
    ``manual_space``       the hand-made baseline (ProxylessNAS's space) on a skeleton, as a LearnedSpace
    ``Architecture``       one network: a skeleton plus a cell per block; ``.build()``, ``.cost()``
Published networks
    ``network_architecture`` a published network (mobilenetv2, proxylessnas-mobile, efficientnet-b0,
                           mnasnet-a1, mobilenetv3-large/-small) as an Architecture
    ``load_library_weights`` copy a torchvision / timm / NNI-hub model's weights into our network
    ``from_timm``, ``to_timm`` timm block strings to an Architecture, and back
Writing the grammar
    ``Skeleton``, ``Stage`` the network skeleton (stages of blocks) and its presets
    ``Cell``               a cell as readable text (``e6_relu6_se:0-1=dw3x3,...``), priced without building it
    ``register_primitive`` add an edge operation with its module builder and exact cost
    ``count_by_hooks``     MAdds and params of any module by forward hooks (to check analytic costs)
Errors
    ``AutoSpaceError``     base of the one-line user errors (all ``ValueError``; the CLI exits 2 on them)
    ``NumericalFaultError`` training kept producing NaN/inf after the allowed rollbacks

Only the error types load eagerly; every other name loads on first access, so importing a submodule that
needs no torch (``autospace_nni.tuner``, ``autospace_nni.errors``) stays fast.
"""

__version__ = '0.1.0'

from .errors import AutoSpaceError, NumericalFaultError

# everything else loads on first access: ``import autospace_nni.tuner`` (what NNI's dispatcher does before it
# connects, within NNI's 10 s) must not pull in torch
_LAZY = {
    'Cell': 'autospace_nni.cells',
    'register_primitive': 'autospace_nni.cells',
    'count_by_hooks': 'autospace_nni.cells.cost',
    'Skeleton': 'autospace_nni.space.skeleton',
    'Stage': 'autospace_nni.space.skeleton',
    'Architecture': 'autospace_nni.space.network',
    'AutoSpace': 'autospace_nni.strategy.autospace',
    'ExplorationSpace': 'autospace_nni.space.exploration',
    'adopt': 'autospace_nni.space.adopted',
    'LearnedSpace': 'autospace_nni.space.learned',
    'manual_space': 'autospace_nni.space.learned',
    'make_evaluator': 'autospace_nni.training',
    'load_dataset': 'autospace_nni.data',
    'network_architecture': 'autospace_nni.presets',
    'load_library_weights': 'autospace_nni.library_weights',
    'from_timm': 'autospace_nni.space.timm_blocks',
    'to_timm': 'autospace_nni.space.timm_blocks',
}

__all__ = ['__version__', 'AutoSpace', 'ExplorationSpace', 'adopt', 'make_evaluator', 'load_dataset',
           'LearnedSpace', 'manual_space', 'Architecture', 'Skeleton', 'Stage', 'Cell', 'register_primitive',
           'count_by_hooks', 'AutoSpaceError', 'NumericalFaultError', 'network_architecture', 'load_library_weights',
           'from_timm', 'to_timm']


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(set(globals()) | set(__all__))
