"""What the forges' REST clients share over `operations/http.py`: JSON requests and
answers, how an unanswered call and a refused wait are put into words, and the
look-up that follows a write whose outcome is unknown."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from urllib3.exceptions import HTTPError

from compiler.errors import OutsideError
from compiler.operations.http import Failure, HttpClient, Request, Response, connection_problem

SHOWN_CHARS = 200  # of an answer quoted in a message


def json_request(method: str, url: str, headers: Mapping[str, str], payload: object) -> Request:
    sent = dict(headers)
    body = None
    if payload is not None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        sent["Content-Type"] = "application/json; charset=utf-8"
    return Request(method, url, sent, body)


def json_answer(response: Response, call: str) -> Any:
    try:
        return json.loads(response.data)
    except ValueError:  # UnicodeDecodeError included
        kind = response.headers.get("content-type", "no Content-Type")
        raise OutsideError(
            f"{call}: {response.status} with an answer that is not JSON ({kind}): "
            f"{shown(response.data)!r}"
        ) from None


def shown(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


def unanswered(call: str, err: HTTPError, http: HttpClient, api_url: str) -> str:
    return f"{call} failed: {connection_problem(err, http.timeout, api_url)}"


def look_up(recover: Callable[[], Any]) -> Callable[[Failure], Any]:
    """After a write that may or may not have happened, find its result (never repeat
    it blindly); a failed look-up says both what happened and what failed."""

    def look(failure: Failure) -> Any:
        try:
            return recover()
        except OutsideError as err:
            raise OutsideError(
                f"{failure.problem}, so it may or may not have happened; "
                f"looking for its result failed too: {err.message}"
            ) from None

    return look


def come_back_later(forge: str, problem: str, asked: float, http: HttpClient) -> OutsideError:
    """The forge asked for a wait longer than we wait: say until when."""
    when = time.gmtime(http.clock() + asked)
    return OutsideError(
        f"{problem}; {forge} asks to wait {asked:.0f} s, longer than the "
        f"{http.policy.max_wait:g} s we wait: "
        f"retry after {time.strftime('%Y-%m-%d %H:%M:%S UTC', when)}"
    )
