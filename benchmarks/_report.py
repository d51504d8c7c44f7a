"""Write one benchmark's section into docs/benchmarks.md, with machine, command and date."""

import datetime
import json
import os
import platform
import re
from contextlib import contextmanager
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / 'docs' / 'benchmarks.md'
HEADER = ('# Benchmarks\n\nEach section is rewritten by the script named in it. Timings compare things measured '
          'on the same machine in one run, as ratios; absolute numbers depend on the machine.\n')


def machine() -> str:
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'
    return f'{os.cpu_count()} cores, {cpu}; {dev}; Python {platform.python_version()}, torch {torch.__version__}'


def write_section(title: str, command: str, body: str) -> None:
    text = DOC.read_text() if DOC.exists() else HEADER
    stamp = datetime.datetime.now().strftime('%Y-%m-%d %H:%M')
    section = (f'## {title}\n\n- machine: {machine()}\n- command: `{command}`\n- date: {stamp}\n\n{body.strip()}\n')
    pattern = re.compile(rf'^## {re.escape(title)}\n.*?(?=^## |\Z)', re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda m: section + '\n', text)
    else:
        text = text.rstrip() + '\n\n' + section
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text.rstrip() + '\n')


def write_block(path, key: str, body: str) -> bool:
    """Replace the text between the lines ``<!-- KEY: begin ... -->`` and ``<!-- KEY: end -->`` of the file ``path``
    (a README's figures, written by the benchmark that measures them) with ``body``; False, and the file untouched,
    when it has no such markers."""
    path = Path(path)
    text = path.read_text()
    k = re.escape(key)
    pattern = re.compile(rf'(^<!-- {k}: begin[^\n]*-->\n).*?(^<!-- {k}: end -->$)', re.S | re.M)
    if not pattern.search(text):
        return False
    path.write_text(pattern.sub(lambda m: m.group(1) + body.strip() + '\n' + m.group(2), text, count=1))
    return True


def claimed(path: Path, make):
    """``make()`` while this process holds the lock of ``path``'s folder
    (:func:`autospace_nni.pipeline.run_dir_lock`), or the JSON value at ``path`` if another process wrote it first;
    raises ``RunDirError`` at once if another process holds the folder. So two processes sharing a benchmark's cache
    each take a different unit."""
    from autospace_nni.pipeline import run_dir_lock
    path = Path(path)
    with run_dir_lock(path.parent):
        return json.loads(path.read_text()) if path.exists() else make()


def cached(path: Path, make):
    """The JSON value cached at ``path``, computing it with ``make()`` and writing it atomically first if it
    is not there (how every benchmark step resumes)."""
    path = Path(path)
    if path.exists():
        return json.loads(path.read_text())
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix('.tmp')
    tmp.write_text(json.dumps(value, indent=1, default=float) + '\n')
    tmp.replace(path)
    return value


@contextmanager
def figure(path, title: str, xlabel: str, ylabel: str = '', size=(6.5, 4.2), title_size: int = 10, legend='best'):
    """One plot's axes (``with figure(...) as ax:``), drawn with Agg and written to ``path`` (a PNG) on leaving, with
    its title, axis labels, a light grid and a legend (at matplotlib's ``legend`` location): how every benchmark plot
    is made."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=size)
    try:
        yield ax
        ax.set_title(title, fontsize=title_size)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc=legend)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
