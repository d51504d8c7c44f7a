"""The published networks against their libraries' models and their papers: MAdds and params of our analytic
cost model, of a hook count of the library's own model (built without weights), and of the paper, plus the
largest output difference of our network under the library model's weights.

    python benchmarks/published_costs.py

Writes the "Published networks" section of docs/benchmarks.md and the cost table of the README (between its
``published-costs`` markers). timm (the test extra) is needed for MnasNet-A1.
"""

import argparse
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autospace_nni.cells import count_by_hooks  # noqa: E402
from autospace_nni.library_weights import library_model, load_library_weights  # noqa: E402
from autospace_nni.presets import LIBRARY_MODELS, NETWORK_PRESETS, PAPER_FIGURES, build_network, network_architecture  # noqa: E402
from benchmarks._report import write_section  # noqa: E402

README = Path(__file__).resolve().parents[1] / 'README.md'
MARKERS = ('<!-- published-costs:start (benchmarks/published_costs.py) -->', '<!-- published-costs:end -->')


def measure(name: str) -> dict:
    arch = network_architecture(name)
    ours = arch.cost()
    lib = library_model(name)
    lib_madds, lib_params = count_by_hooks(lib, arch.skeleton.input_shape)
    torch.manual_seed(0)
    with torch.no_grad():      # batch-norm statistics away from their defaults, so a mapping slip shows
        for m in lib.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
    net = load_library_weights(build_network(name), lib)
    lib.eval(), net.eval()
    x = torch.randn(2, *arch.skeleton.input_shape)
    with torch.no_grad():
        diff = float((net(x) - lib(x)).abs().max())
    paper = PAPER_FIGURES[name]
    return {'name': name, 'library': ' '.join(LIBRARY_MODELS[name]), 'madds': ours.madds, 'params': ours.params,
            'lib_madds': lib_madds, 'lib_params': lib_params, 'paper_madds': paper['madds'],
            'paper_params': paper['params'], 'max_output_diff': diff}


def table(rows) -> str:
    lines = ['| network | library model | ours: MAdds / params | library (hook count) | paper | ours / paper | '
             'max output difference, same weights |', '|---|---|---|---|---|---|---|']
    for r in rows:
        same = 'equal' if (r['madds'], r['params']) == (r['lib_madds'], r['lib_params']) else 'DIFFERENT'
        lines.append(
            f"| `{r['name']}` | {r['library']} | {r['madds'] / 1e6:.1f} M / {r['params'] / 1e6:.3f} M | "
            f"{r['lib_madds'] / 1e6:.1f} M / {r['lib_params'] / 1e6:.3f} M ({same}) | "
            f"{r['paper_madds'] / 1e6:.0f} M / {r['paper_params'] / 1e6:.1f} M | "
            f"{100 * (r['madds'] / r['paper_madds'] - 1):+.1f}% / {100 * (r['params'] / r['paper_params'] - 1):+.1f}% | "
            f"{r['max_output_diff']:.1e} |")
    return '\n'.join(lines)


def write_readme(body: str) -> None:
    text = README.read_text()
    start, end = MARKERS
    block = f'{start}\n{body}\n{end}'
    pattern = re.compile(re.escape(start) + r'.*?' + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f'README.md has no {start} ... {end} block to fill')
    README.write_text(pattern.sub(lambda m: block, text))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--no-write', action='store_true', help='print the table only')
    args = p.parse_args(argv)
    rows = [measure(n) for n in NETWORK_PRESETS]
    body = table(rows)
    print(body)
    if not args.no_write:
        note = ('Analytic MAdds (conv and linear multiply-accumulates) and params of the network written in the cell '
                'language, a forward-hook count of the library\'s own model built without weights, and the '
                'paper\'s figures at 224x224. The last column is the largest absolute difference between the '
                'two networks\' logits on random 224x224 inputs, ours loaded with the library model\'s randomly '
                'initialised weights and randomised batch-norm statistics (`autospace_nni.library_weights`).')
        write_section('Published networks', 'python benchmarks/published_costs.py', note + '\n\n' + body)
        write_readme(body)
    return 0


if __name__ == '__main__':
    sys.exit(main())
