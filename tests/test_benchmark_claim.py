"""benchmarks._report.claimed: two benchmark processes sharing one cache each take a different unit. The other
process is a real one, holding the unit folder's OS lock."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autospace_nni.pipeline import RunDirError
from benchmarks._report import cached, claimed

ROOT = Path(__file__).resolve().parents[1]


def _never():
    raise AssertionError('make() must not run')


def test_claimed_makes_the_value_and_cached_writes_it(tmp_path):
    path = tmp_path / 'unit' / 'result.json'
    assert cached(path, lambda: claimed(path, lambda: {'acc': 0.9})) == {'acc': 0.9}
    assert json.loads(path.read_text()) == {'acc': 0.9}
    # the lock is free again afterwards: a second claim reads the finished value and makes nothing
    assert claimed(path, _never) == {'acc': 0.9}


def test_claimed_reads_a_value_another_process_finished_first(tmp_path):
    path = tmp_path / 'unit' / 'result.json'
    path.parent.mkdir()
    path.write_text('{"acc": 0.5}\n')
    assert claimed(path, _never) == {'acc': 0.5}


def test_claimed_refuses_a_unit_another_process_holds_and_takes_it_once_freed(tmp_path):
    unit = tmp_path / 'unit'
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time\nfrom autospace_nni.pipeline import run_dir_lock\n'
         f'with run_dir_lock({str(unit)!r}):\n    print("held", flush=True)\n    sys.stdin.readline()'],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(RunDirError, match=f'process {holder.pid}'):
            claimed(unit / 'result.json', _never)
    finally:
        holder.communicate('\n', timeout=60)
    assert holder.returncode == 0
    assert claimed(unit / 'result.json', lambda: {'acc': 1.0}) == {'acc': 1.0}
