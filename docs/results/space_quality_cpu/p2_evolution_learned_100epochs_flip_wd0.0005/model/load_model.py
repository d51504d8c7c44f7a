"""Rebuild the retrained network: needs torch and autospace_nni's network code, not NNI.

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
