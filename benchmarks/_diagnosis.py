"""Why a trained network falls short of an accuracy goal, read from its predictions: how well it fits its own
training split without augmentation (is it capacity or generalisation that limits it?) and which classes hold its
test errors. space_quality.py writes this for each of P2's retrained networks (``diagnosis.json``) and the report
reads it."""

from __future__ import annotations

import numpy as np
import torch

from autospace_nni.search import predict

# the label order of the Fashion-MNIST IDX files
CLASS_NAMES = {'fashion-mnist': ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
                                 'Sneaker', 'Bag', 'Ankle boot')}


def confusion(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """``k`` x ``k`` counts: row = true class, column = predicted class."""
    return np.bincount(np.asarray(y) * k + np.asarray(pred), minlength=k * k).reshape(k, k)


def diagnose(model: torch.nn.Module, data, device='cpu') -> dict:
    """The network's accuracy on the un-augmented training split, the held-out split and the test split, and the
    test split's confusion matrix (``data``: a DataSplits)."""
    out = {'dataset': data.name,
           'classes': list(CLASS_NAMES.get(data.name, [str(c) for c in range(data.num_classes)]))}
    for split in ('train', 'val', 'test'):
        ds = getattr(data, split)
        pred = predict(model.to(device), ds, device=device).numpy()
        y = ds.tensors[1].numpy()
        out[f'{split}_acc'] = float((pred == y).mean())
        out[f'{split}_n'] = int(len(y))
        if split == 'test':
            out['test_confusion'] = confusion(y, pred, data.num_classes).tolist()
    return out


def weak_classes(d: dict, worst: int = 3) -> dict:
    """From :func:`diagnose`'s record: each class's test accuracy, the ``worst`` classes (weakest first) and the
    others (``rest``), the test errors in all and in the ``worst`` classes."""
    cm = np.asarray(d['test_confusion'])
    per_class = np.diag(cm) / np.maximum(cm.sum(1), 1)
    order = np.argsort(per_class, kind='stable')
    weak = order[:worst]
    return {'per_class': per_class, 'weak': weak, 'rest': order[worst:], 'errors': int(cm.sum() - np.trace(cm)),
            'weak_errors': int(cm[weak].sum() - np.diag(cm)[weak].sum())}


def diagnosis_lines(d: dict, goal: float, worst: int = 3) -> list:
    """The report's reading of :func:`diagnose`'s record against an accuracy ``goal``: the fit of the training
    split against the test accuracy, the test errors the goal allows against those made, the ``worst`` classes'
    share of the errors and the commonest confusions. Every figure is computed from ``d``."""
    cm = np.asarray(d['test_confusion'])
    names, n = d['classes'], int(cm.sum())
    allowed = int(np.floor(round((1 - goal) * n, 6)))
    w = weak_classes(d, worst)
    per_class, weak, rest, errors, weak_err = w['per_class'], w['weak'], w['rest'], w['errors'], w['weak_errors']
    off = cm.copy()
    np.fill_diagonal(off, 0)
    top = np.dstack(np.unravel_index(np.argsort(-off, axis=None, kind='stable'), off.shape))[0][:3]
    gap = 100 * (d['train_acc'] - d['test_acc'])
    if d['train_acc'] < goal:
        reading = ('it misses the goal on the very images it was trained on, so what limits it is how well it can '
                   'fit (its capacity under this recipe\'s regularisation), and more epochs of the same recipe '
                   'are unlikely to close the gap')
    else:
        reading = (f'it fits its training split beyond the goal, so what limits it is generalisation '
                   f'({gap:.2f} points between the training and test splits)')
    lines = [f'Why P2\'s network falls where it does (its own predictions; `diagnosis.json`): without augmentation '
             f'it classifies {d["train_acc"]:.4f} of its {d["train_n"]} training images, {d["val_acc"]:.4f} of the '
             f'held-out and {d["test_acc"]:.4f} of the {n} test images: {reading}.',
             f'The goal allows {allowed} test errors; it makes {errors}. Its {worst} weakest classes (' +
             ', '.join(f'{names[c]} {per_class[c]:.3f}' for c in weak) +
             f') hold {weak_err} of them ({100 * weak_err / max(errors, 1):.0f}%); the other '
             f'{len(rest)} classes average {per_class[rest].mean():.3f}. Commonest confusions (true → predicted): ' +
             ', '.join(f'{names[i]} → {names[j]} {int(off[i, j])}' for i, j in top) + '.']
    return lines


def compare_lines(named: list, worst: int = 3) -> list:
    """A table of :func:`diagnose` records of networks trained with different recipes, ``named`` as (label, record)
    with the reference (P2's network) first: each one's fit of its training split, its held-out and test accuracy,
    its test accuracy in the reference's ``worst`` classes and its mean over the others, so that a row says what its
    recipe changed against the reference's and where."""
    ref = weak_classes(named[0][1], worst)
    weak, rest = ref['weak'], ref['rest']
    names = named[0][1]['classes']
    lines = ['| retrain | training split (no augmentation) | held-out | test | ' +
             ' | '.join(names[c] for c in weak) + f' | other {len(rest)} classes (mean) |',
             '|---' * (5 + len(weak)) + '|']
    for label, d in named:
        per_class = weak_classes(d, worst)['per_class']
        lines.append(f'| {label} | {d["train_acc"]:.4f} | {d["val_acc"]:.4f} | {d["test_acc"]:.4f} | ' +
                     ' | '.join(f'{per_class[c]:.3f}' for c in weak) + f' | {per_class[rest].mean():.3f} |')
    return lines


def change_words(ref: dict, other: dict, worst: int = 3) -> str:
    """How the network of record ``other`` differs from that of ``ref`` (both :func:`diagnose`'s), in words: the fit
    of its training split and its test accuracy in ``ref``'s ``worst`` classes and in the others."""
    a, b = weak_classes(ref, worst), weak_classes(other, worst)
    rest = a['rest']
    return (f'it classifies {other["train_acc"]:.2%} of its training images (against {ref["train_acc"]:.2%}), and '
            + ', '.join(f'{ref["classes"][c]} {b["per_class"][c]:.3f} (against {a["per_class"][c]:.3f})'
                        for c in a['weak']) +
            (f'; the other {len(rest)} classes average ' if len(rest) != 1 else '; the other class averages ') +
            f'{b["per_class"][rest].mean():.3f} '
            f'(against {a["per_class"][rest].mean():.3f})')
