"""Hypothesis strategies for cells, shared by the property tests."""

import numpy as np
from hypothesis import strategies as st

from autospace_nni.cells import Cell


@st.composite
def cells(draw, max_nodes=5):
    seed = draw(st.integers(0, 2 ** 31 - 1))
    n = draw(st.integers(2, max_nodes))
    p = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
    return Cell.random(np.random.RandomState(seed), n_nodes=n, edge_prob=p)


@st.composite
def gene_cells(draw, max_nodes=4):
    """A random cell with any of the genes: decimal expand ratios, every activation, every SE style."""
    cell = draw(cells(max_nodes))
    expand = draw(st.sampled_from([1, 2, 3, 6, 1.5, 2.3, 2.5, 3.67, 4.5]))
    act = draw(st.sampled_from(['relu6', 'hswish', 'relu', 'swish']))
    se = draw(st.booleans())
    return cell.with_genes(expand=expand, act=act, se=se, se_style=draw(st.sampled_from(['exp', 'in', 'v3'])))


@st.composite
def shapes(draw):
    c_in = draw(st.integers(1, 12))
    c_out = draw(st.sampled_from([c_in, draw(st.integers(1, 12))]))
    stride = draw(st.sampled_from([1, 2]))
    h = draw(st.integers(1, 9))
    w = draw(st.integers(1, 9))
    return c_in, c_out, stride, h, w
