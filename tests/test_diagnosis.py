"""benchmarks/_diagnosis.py: why a trained network falls short of a goal, on a fixed model and made-up predictions
with known answers, and its place in P2's report line."""

import json

import numpy as np
import torch
from torch.utils.data import TensorDataset

from autospace_nni.data import DataSplits
from autospace_nni.search import evaluate_accuracy, predict
from benchmarks._diagnosis import CLASS_NAMES, change_words, compare_lines, confusion, diagnose, diagnosis_lines
from benchmarks._p2_report import p2_section, p2_tag


class _Argmax(torch.nn.Module):
    """Predicts the index of the largest input feature: a model whose every prediction is known."""

    def forward(self, x):
        return x.flatten(1)


def _split(labels, shown):
    """Images whose largest feature is ``shown`` (what the model predicts) for true ``labels``."""
    return TensorDataset(torch.eye(10)[torch.tensor(shown)].view(-1, 1, 1, 10), torch.tensor(labels))


def test_confusion_counts_true_rows_and_predicted_columns():
    cm = confusion(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 0]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [2, 0, 1]]


def test_diagnose_on_a_model_with_known_predictions():
    data = DataSplits('fashion-mnist', train=_split([0, 1, 2, 3], [0, 1, 2, 3]), val=_split([4, 5], [4, 4]),
                      test=_split([6, 6, 6, 0, 1], [0, 0, 6, 0, 1]), num_classes=10, input_shape=(1, 1, 10))
    assert predict(_Argmax(), data.test, batch_size=2).tolist() == [0, 0, 6, 0, 1]   # batches joined in order
    assert evaluate_accuracy(_Argmax(), data.test, batch_size=2) == 0.6          # the same predictions, counted
    empty = TensorDataset(torch.zeros(0, 1, 1, 10), torch.zeros(0, dtype=torch.long))
    assert predict(_Argmax(), empty).shape == (0,) and evaluate_accuracy(_Argmax(), empty) == 0.0
    d = diagnose(_Argmax(), data)
    assert (d['train_acc'], d['val_acc'], d['test_acc']) == (1.0, 0.5, 0.6)
    assert (d['train_n'], d['val_n'], d['test_n']) == (4, 2, 5)
    assert d['classes'] == list(CLASS_NAMES['fashion-mnist']) and d['classes'][6] == 'Shirt'
    cm = np.array(d['test_confusion'])
    assert cm[6, 0] == 2 and cm[6, 6] == 1 and cm.sum() == 5 and np.trace(cm) == 3
    json.dumps(d)                       # it is cached as JSON
    other = DataSplits('digits', data.train, data.val, data.test, 10, (1, 1, 10))
    assert diagnose(_Argmax(), other)['classes'] == [str(c) for c in range(10)]


def _record(train_acc, cm, names=('a', 'b', 'c', 'd')):
    cm = np.asarray(cm)
    return {'dataset': 'x', 'classes': list(names), 'train_acc': train_acc, 'train_n': 1000, 'val_acc': 0.9,
            'val_n': 100, 'test_acc': float(np.trace(cm) / cm.sum()), 'test_n': int(cm.sum()),
            'test_confusion': cm.tolist()}


# 400 test images, 100 per class; class c right 97 times, b 90 (6 called a, 4 called d), a 99, d 98
CM = [[99, 1, 0, 0], [6, 90, 0, 4], [0, 0, 97, 3], [0, 2, 0, 98]]


def test_diagnosis_lines_count_errors_weak_classes_and_confusions():
    first, second = diagnosis_lines(_record(0.99, CM), goal=0.955, worst=2)
    assert 'classifies 0.9900 of its 1000 training images, 0.9000 of the held-out and 0.9600 of the 400 test' in first
    assert 'fits its training split beyond the goal' in first and '3.00 points between' in first
    # 4.5% of 400 = 18 errors allowed; 16 made; b (0.90) and c (0.97) hold 10 + 3 of them
    assert second.startswith('The goal allows 18 test errors; it makes 16. Its 2 weakest classes (b 0.900, c 0.970) '
                             'hold 13 of them (81%); the other 2 classes average 0.985.')
    assert second.endswith('(true → predicted): b → a 6, b → d 4, c → d 3.')


def test_diagnosis_lines_read_a_network_that_cannot_fit_its_training_split():
    first, _ = diagnosis_lines(_record(0.95, CM), goal=0.955)
    assert 'misses the goal on the very images it was trained on' in first and 'generalisation' not in first
    # at exactly the goal it fits "beyond" nothing but does reach it: read as generalisation
    assert 'generalisation' in diagnosis_lines(_record(0.955, CM), goal=0.955)[0]


def test_p2_section_adds_the_reading_once_the_network_is_examined(tmp_path):
    S = {'p2_strategy': 'evolution', 'p2_epochs': (40, 100)}
    rung = {'strategy': 'evolution', 'seed': 0, 'madds': 24.1e6, 'params': 778e3, 'test_acc': 0.95, 'val_acc': 0.95,
            'retrain_epochs': 100, 'sample': {'s1_b0': 'zero'}}
    lines, _ = p2_section(S, tmp_path, [rung])
    assert len(lines) == 1 and lines[0].endswith('**NOT met**.')
    (tmp_path / p2_tag(S, 100)).mkdir()
    (tmp_path / p2_tag(S, 100) / 'diagnosis.json').write_text(json.dumps(_record(0.99, CM)))
    lines, summ = p2_section(S, tmp_path, [rung])
    assert lines[0].endswith('**NOT met**.') and lines[1] == '' and lines[2].startswith('Why P2')
    assert lines[3].startswith('The goal allows 18 test errors') and summ['best_test_acc'] == 0.95


# the same test images after another recipe: b right 95 (3 as a, 2 as d), c 96, a 98, d 98
CM2 = [[98, 2, 0, 0], [3, 95, 0, 2], [0, 0, 96, 4], [0, 2, 0, 98]]


def test_compare_lines_and_change_words_follow_the_references_weakest_classes():
    ref, other = _record(0.99, CM), {**_record(0.97, CM2), 'val_acc': 0.93}
    head, rule, *rows = compare_lines([('base', ref), ('flips', other)], worst=2)
    # the reference's weakest classes (b, then c) are the columns, for every row
    assert head == ('| retrain | training split (no augmentation) | held-out | test | b | c | '
                    'other 2 classes (mean) |') and rule == '|---' * 7 + '|'
    assert rows == ['| base | 0.9900 | 0.9000 | 0.9600 | 0.900 | 0.970 | 0.985 |',
                    '| flips | 0.9700 | 0.9300 | 0.9675 | 0.950 | 0.960 | 0.980 |']
    assert change_words(ref, other, worst=2) == (
        'it classifies 97.00% of its training images (against 99.00%), and b 0.950 (against 0.900), c 0.960 '
        '(against 0.970); the other 2 classes average 0.980 (against 0.985)')


def test_p2_section_compares_every_examined_rung_p2s_network_first(tmp_path):
    S = {'p2_strategy': 'evolution', 'p2_epochs': (40, 100),
         'p2_regularised': {'epochs': 100, 'flip': True, 'weight_decay': 5e-4}}
    base = {'strategy': 'evolution', 'seed': 0, 'madds': 24.1e6, 'params': 778e3, 'test_acc': 0.95, 'val_acc': 0.95,
            'retrain_epochs': 100, 'sample': {'s1_b0': 'zero'}}
    reg = {**base, 'test_acc': 0.96, 'val_acc': 0.94, 'recipe': {'flip': True, 'weight_decay': 5e-4}}
    for rung, cm in ((100, CM), (S['p2_regularised'], CM2)):
        (tmp_path / p2_tag(S, rung)).mkdir()
        (tmp_path / p2_tag(S, rung) / 'diagnosis.json').write_text(json.dumps(_record(0.99, cm)))
    lines, summ = p2_section(S, tmp_path, [base, reg])
    # the held-out split picks the base rung, though the other tests better; its reading, then the table
    assert summ['best_test_acc'] == 0.95 and lines[2].startswith('Why P2')
    assert lines[5].startswith("What each examined retrain's recipe changed")
    assert lines[7].startswith('| retrain |') and lines[9].startswith('| 100 epochs |')
    assert lines[10].startswith('| 100 epochs with horizontal flips and weight decay 0.0005 | 0.9900 | 0.9000 |')
    # P2's network not examined: neither its reading nor a table led by another rung
    (tmp_path / p2_tag(S, 100) / 'diagnosis.json').unlink()
    assert len(p2_section(S, tmp_path, [base, reg])[0]) == 1
