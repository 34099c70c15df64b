"""A pytest plugin (-p tests.fidelity.ipify) that answers the public-IP lookup the suites'
session fixtures make (api.ipify.org, api64.ipify.org) without the network: an address
of TEST-NET-3, as ipify answers a machine without IPv6 on both. Every other request goes
out as usual."""

from __future__ import annotations

import json

import requests
from requests.adapters import HTTPAdapter

HOSTS = ("api.ipify.org", "api64.ipify.org")
ADDRESS = "203.0.113.10"

_send = HTTPAdapter.send


def _answer(request: requests.PreparedRequest) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.url = request.url or ""
    response.request = request
    response.headers["Content-Type"] = "application/json"
    response._content = json.dumps({"ip": ADDRESS}).encode()
    return response


def _send_or_answer(self, request, *args, **kwargs):
    host = requests.utils.urlparse(request.url).hostname
    if host in HOSTS:
        return _answer(request)
    return _send(self, request, *args, **kwargs)


def pytest_configure(config) -> None:
    HTTPAdapter.send = _send_or_answer


def pytest_unconfigure(config) -> None:
    HTTPAdapter.send = _send
