"""The workarounds that reach inside NNI 3.0, against NNI's own code and a real socket."""

import http.server
import socket
import threading

import pytest
import requests

from autospace_nni.nni_patches import patient_manager_start


class _Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == '/api/v1/nni/check-status'
        self.send_response(200 if ok else 404)
        self.send_header('Content-Type', 'application/json')
        self.end_headers()
        self.wfile.write(b'{"status": "RUNNING"}')

    def log_message(self, *args):
        pass


def _free_port():
    with socket.socket() as s:
        s.bind(('localhost', 0))
        return s.getsockname()[1]


def _serve_after(port, delay_s):
    """A stand-in for the NNI manager's REST server that starts listening ``delay_s`` seconds from now."""
    box = {}

    def start():
        box['server'] = http.server.HTTPServer(('localhost', port), _Status)
        box['server'].serve_forever(poll_interval=0.1)
    timer = threading.Timer(delay_s, start)
    timer.start()
    return timer, box


def _stop(timer, box):
    import time
    while 'server' not in box:     # the timer's thread becomes the server's, so wait for it to start
        time.sleep(0.05)
    box['server'].shutdown()
    box['server'].server_close()
    timer.join()


def test_a_slow_manager_start_fails_nni_alone_and_passes_inside_the_patch():
    from nni.experiment import launcher
    original = launcher._check_rest_server
    # NNI's own check: three tries a second apart, so a manager that needs 6 s is "Connection refused"
    port = _free_port()
    timer, box = _serve_after(port, 6)
    try:
        with pytest.raises(requests.exceptions.ConnectionError):
            launcher._check_rest_server(port)
    finally:
        _stop(timer, box)
    # the same manager start inside the patch is waited for, through NNI's own function
    port = _free_port()
    timer, box = _serve_after(port, 6)
    try:
        with patient_manager_start(20):
            launcher._check_rest_server(port, url_prefix=None)
    finally:
        _stop(timer, box)
    assert launcher._check_rest_server is original      # NNI is left as it was


def test_a_dead_manager_still_fails_and_the_patch_is_undone():
    from nni.experiment import launcher
    original = launcher._check_rest_server
    with pytest.raises(requests.exceptions.ConnectionError):
        with patient_manager_start(4):
            launcher._check_rest_server(_free_port())
    assert launcher._check_rest_server is original
    with pytest.raises(ValueError, match='timeout_s'):
        with patient_manager_start(1):
            pass
