"""Retrain an architecture from scratch with the standard recipe and export it three ways
(``autospace-nni train``):

    OUT/metrics.json       test accuracy, MAdds, params, epochs, wall time
    OUT/arch.json          the architecture (skeleton + sample)
    OUT/model_state.pt     state dict; OUT/load_model.py rebuilds the network without NNI
    OUT/model.ts           TorchScript (traced), needs only torch
    OUT/model.onnx         ONNX (checked with onnxruntime when it is installed)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import nn

from .data import DataSplits
from .space.network import Architecture

__all__ = ['retrain', 'export_model', 'LOADER_SOURCE']

LOADER_SOURCE = '''"""Rebuild the retrained network: needs torch and autospace_nni's network code, not NNI.

    from load_model import load
    net = load('path/to/this/folder')      # eval mode, CPU
"""
import json
from pathlib import Path

import torch

from autospace_nni.space.network import Architecture


def load(folder='.'):
    folder = Path(folder)
    arch = Architecture.from_dict(json.loads((folder / 'arch.json').read_text()))
    net = arch.build()
    net.load_state_dict(torch.load(folder / 'model_state.pt', map_location='cpu'))
    return net.eval()


if __name__ == '__main__':
    import sys
    net = load(Path(__file__).parent if len(sys.argv) < 2 else sys.argv[1])
    print(net)
'''


#: recipe keys newer than some checkpoints, with the value those checkpoints were trained with (so they resume)
RECIPE_ADDED = {'flip': False}


def _augment(x: torch.Tensor, gen: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random translation by up to ``pad`` pixels (pad, then crop back), one slice per distinct shift."""
    n, c, h, w = x.shape
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    out = torch.empty_like(x)
    for sx in range(2 * pad + 1):
        for sy in range(2 * pad + 1):
            idx = ((dx == sx) & (dy == sy)).nonzero(as_tuple=True)[0]
            if len(idx):
                out[idx] = padded[idx, :, sy:sy + h, sx:sx + w]
    return out


def _flip(x: torch.Tensor, gen: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Horizontal flip (mirror left-right) of each image with probability ``p``."""
    flip = (torch.rand(len(x), generator=gen) < p).nonzero(as_tuple=True)[0]
    x = x.clone()
    x[flip] = x[flip].flip(-1)
    return x


def _erase(x: torch.Tensor, gen: torch.Generator, p: float = 0.5, area=(0.02, 0.2), ratio=(0.3, 3.3)) -> torch.Tensor:
    """Random erasing (Zhong et al., 2020): with probability ``p`` per image, one rectangle of a random
    area fraction and aspect ratio is set to 0 (the normalised data's mean)."""
    import math
    n, _, h, w = x.shape
    x = x.clone()
    u = torch.rand(n, 4, generator=gen)
    for i in range(n):
        if u[i, 0] >= p:
            continue
        a = (area[0] + (area[1] - area[0]) * float(u[i, 1])) * h * w
        r = math.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * float(u[i, 2]))
        eh, ew = min(h, max(1, round(math.sqrt(a * r)))), min(w, max(1, round(math.sqrt(a / r))))
        pos = int(float(u[i, 3]) * (h - eh + 1) * (w - ew + 1))
        top, left = pos // (w - ew + 1), pos % (w - ew + 1)
        x[i, :, top:top + eh, left:left + ew] = 0
    return x


def retrain(arch: Architecture, data: DataSplits, *, epochs: int = 10, batch_size: int = 64, lr: float = 0.05,
            label_smoothing: float = 0.1, weight_decay: float = 4e-5, augment: bool = False, flip: bool = False,
            erase: bool = False, seed: int = 0,
            device: str = 'cpu', out_dir=None, progress: bool = False, on_epoch=None, checkpoint=None) -> dict:
    """Train ``arch`` from scratch with the standard recipe; ``augment`` adds random translations, ``flip``
    horizontal flips and ``erase`` random erasing (applied in that order). ``on_epoch(epoch, val_acc)`` is called
    after each epoch (NNI trials report it as an intermediate result). With ``checkpoint`` (a file path) the
    state is saved there after every epoch, and a run killed part-way continues from it to the same
    result; the file is removed when training ends."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    # channels_last: the same arithmetic up to float rounding (outputs within ~1e-4), and the depthwise
    # convolutions these networks are made of train about 1.8x faster on CPU than in the default layout
    model = arch.build().to(device, memory_format=torch.channels_last)
    from .training import sgd_cosine
    opt, sched = sgd_cosine(model.parameters(), lr=lr, epochs=epochs, weight_decay=weight_decay)
    crit = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    x, y = data.train.tensors
    t0 = time.time()
    history, start, before = [], 0, 0.0   # before: seconds trained by the runs this one continues
    # what a continued run must share with the run it continues
    recipe = {'arch': json.dumps(arch.to_dict(), sort_keys=True), 'train_size': len(x), 'epochs': epochs,
              'batch_size': batch_size, 'lr': lr, 'label_smoothing': label_smoothing, 'weight_decay': weight_decay,
              'augment': augment, 'flip': flip, 'erase': erase, 'seed': seed}
    if checkpoint is not None and Path(checkpoint).exists():
        start, history, before = _load_epoch_state(checkpoint, model, opt, sched, gen, recipe)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=epochs, initial=start, desc='train', unit='epoch', dynamic_ncols=True)
    try:
        for epoch in range(start, epochs):
            model.train()
            perm = torch.randperm(len(x), generator=gen)
            total = 0.0
            for i in range(0, len(x), batch_size):
                idx = perm[i:i + batch_size]
                if len(idx) < 2:
                    continue
                xb = x[idx]
                if augment:
                    xb = _augment(xb, gen)
                if flip:
                    xb = _flip(xb, gen)
                if erase:
                    xb = _erase(xb, gen)
                loss = crit(model(xb.to(device).contiguous(memory_format=torch.channels_last)), y[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            sched.step()
            from .search import evaluate_accuracy
            val = evaluate_accuracy(model, data.val, device=device)
            history.append({'epoch': epoch, 'train_loss': total / len(x), 'val_acc': val})
            if checkpoint is not None:
                _save_epoch_state(checkpoint, model, opt, sched, gen, recipe, history, before + time.time() - t0)
            if on_epoch is not None:
                on_epoch(epoch, val)
            if bar is not None:
                bar.set_postfix(loss=f'{total / len(x):.3f}', val_acc=f'{val:.3f}')
                bar.update(1)
    finally:   # also on Ctrl-C, so the next line starts clean
        if bar is not None:
            bar.close()
    from .search import evaluate_accuracy
    wall = before + time.time() - t0
    cost = arch.cost()
    metrics = {'test_acc': evaluate_accuracy(model, data.test, device=device), 'val_acc': history[-1]['val_acc'],
               'madds': cost.madds, 'params': cost.params, 'epochs': epochs, 'wall_time_s': round(wall, 2),
               'dataset': data.name, 'recipe': {'optimizer': 'SGD nesterov momentum 0.9', 'lr': lr,
                                                'schedule': 'cosine', 'label_smoothing': label_smoothing,
                                                'weight_decay': weight_decay, 'augment': augment, 'flip': flip,
                                                'erase': erase, 'batch_size': batch_size, 'seed': seed},
               'history': history}
    model = model.cpu().eval().to(memory_format=torch.contiguous_format)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        metrics['exports'] = export_model(model, arch, out)
        (out / 'metrics.json').write_text(json.dumps(metrics, indent=1) + '\n')
    if checkpoint is not None and Path(checkpoint).exists():
        Path(checkpoint).unlink()      # only once the results are written
    return metrics


def _save_epoch_state(path, model, opt, sched, gen, recipe, history, wall_s) -> None:
    """Everything the next epoch depends on (weights, optimizer, schedule, both random streams), written
    atomically: a kill leaves the previous epoch's file or this one, never half of one."""
    import os
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.tmp-{os.getpid()}-{path.name}')
    torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'sched': sched.state_dict(),
                'gen': gen.get_state(), 'torch_rng': torch.get_rng_state(), 'recipe': recipe,
                'history': history, 'wall_s': wall_s,
                'cuda_rng': torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []}, tmp)
    os.replace(tmp, path)


def progress(checkpoint) -> dict | None:
    """How far an unfinished :func:`retrain` has got, read from its checkpoint without building the network:
    the epochs done, their history (train loss, held-out accuracy) and the seconds trained; None without one."""
    if checkpoint is None or not Path(checkpoint).exists():
        return None
    state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    return {'epochs': len(state['history']), 'history': list(state['history']), 'wall_s': float(state['wall_s'])}


def _load_epoch_state(path, model, opt, sched, gen, recipe):
    """Restore :func:`_save_epoch_state`'s file; returns (next epoch, history, seconds trained so far).
    A checkpoint of another network, data size or recipe is refused, naming what differs."""
    from .errors import AutoSpaceError
    state = torch.load(path, map_location='cpu', weights_only=True)
    saved = {**RECIPE_ADDED, **state['recipe']}
    differ = sorted(k for k in recipe if saved.get(k) != recipe[k])
    if differ:
        raise AutoSpaceError(f'{path} is a checkpoint of another training (different {", ".join(differ)}); '
                             'run the same command to continue it, or remove it (--overwrite) to start again')
    model.load_state_dict(state['model'])
    opt.load_state_dict(state['opt'])
    sched.load_state_dict(state['sched'])
    gen.set_state(state['gen'])
    torch.set_rng_state(state['torch_rng'])
    if state['cuda_rng']:
        torch.cuda.set_rng_state_all(state['cuda_rng'])
    return len(state['history']), list(state['history']), float(state['wall_s'])


def export_model(model: nn.Module, arch: Architecture, out: Path) -> dict:
    """Write the state dict + loader, TorchScript and ONNX; check each reloads to the same outputs."""
    out = Path(out)
    model = model.cpu().eval()
    example = torch.randn(2, *arch.skeleton.input_shape)
    with torch.no_grad():
        ref = model(example)
    (out / 'arch.json').write_text(json.dumps(arch.to_dict(), indent=1) + '\n')
    torch.save(model.state_dict(), out / 'model_state.pt')
    (out / 'load_model.py').write_text(LOADER_SOURCE)
    report = {'state_dict': 'model_state.pt'}
    import warnings
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        traced = torch.jit.trace(model, example)
    traced.save(str(out / 'model.ts'))
    report['torchscript'] = 'model.ts'
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            torch.onnx.export(model, example, str(out / 'model.onnx'), input_names=['input'], output_names=['logits'],
                              dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}}, dynamo=False)
        report['onnx'] = 'model.onnx'
        try:
            import onnxruntime as ort
            sess = ort.InferenceSession(str(out / 'model.onnx'), providers=['CPUExecutionProvider'])
            got = torch.from_numpy(sess.run(None, {'input': example.numpy()})[0])
            report['onnx_max_abs_diff'] = float((got - ref).abs().max())
        except ImportError:
            report['onnx_check'] = 'onnxruntime not installed'
    except Exception as e:   # ONNX is optional: the other two exports still stand
        report['onnx_error'] = f'{type(e).__name__}: {e}'
    return report
