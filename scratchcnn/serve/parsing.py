"""Request parsing and validation: what a client sent -> checked Python values.

Every refusal is a ``RequestError``: an HTTP status and a message saying what was wrong and what
was expected. The handler answers it as ``{"error": message}``.
"""
import json
from http import HTTPStatus

import numpy as np

MAX_BODY_BYTES = 1024 * 1024   # 1 MiB: a 280x280 drawing as JSON is 160-320 KB
MAX_SIDE = 1024                # largest accepted drawing width or height, in pixels
DEFAULT_SIDE = 280             # the page's canvas
DRAWING_EXAMPLE = '{"width": 280, "height": 280, "pixels": [...]}'


class RequestError(Exception):
    """A request we refuse: an HTTP status, a message for the client and, for 405, the methods
    the path does take (``allow``, sent as the ``Allow`` header)."""

    def __init__(self, status, message, allow=None):
        super().__init__(message)
        self.status, self.message, self.allow = status, message, allow


def bad_request(message):
    """A 400 ``RequestError``."""
    return RequestError(HTTPStatus.BAD_REQUEST, message)


def declared_length(headers):
    """The body length a request declares: its ``Content-Length`` as an int.

    Refuses a chunked body or a missing length (411) and a length that is not a number (400).
    """
    if headers.get("Transfer-Encoding"):
        raise RequestError(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
    length = headers.get("Content-Length")
    if length is None:
        raise RequestError(HTTPStatus.LENGTH_REQUIRED, "Content-Length header required")
    if not length.strip().isdigit():
        raise bad_request(f"bad Content-Length: {length[:40]!r}")
    return int(length)


def too_large(length):
    """The 413 for a body of ``length`` bytes, over ``MAX_BODY_BYTES``."""
    return RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"request body of {length} bytes is over the {MAX_BODY_BYTES}-byte limit; "
                        "send a 280x280 drawing or smaller")


def _reject_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json_object(body, example=DRAWING_EXAMPLE):
    """A request body (bytes) -> the JSON object it holds, as a dict.

    Refuses (400) text that is not UTF-8, not strict JSON (``NaN`` and ``Infinity`` included) or
    not an object, whose message shows ``example``.
    """
    try:
        request = json.loads(body, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise bad_request("request body is not UTF-8 text") from None
    except (ValueError, RecursionError) as e:
        raise bad_request(f"request body is not valid JSON: {e}") from None
    if not isinstance(request, dict):
        raise bad_request(f"expected a JSON object like {example}")
    return request


def parse_drawing(body):
    """The request body of ``POST /api/predict`` -> ``(height, width)`` float32 in ``[0, 1]``.

    Expected: a JSON object ``{"width": W, "height": H, "pixels": [...]}`` with ``pixels`` a
    flat, row-major list of ``W * H`` numbers from 0 (black) to 255 (white); ``width`` and
    ``height`` default to 280. Either polarity works (white on black, as the page draws, or
    black on white), like ``predict``. Raises ``RequestError`` (400) saying what is wrong.
    """
    return drawing_from(parse_json_object(body))


def drawing_from(request):
    """A parsed request object -> its drawing, ``(height, width)`` float32 in ``[0, 1]``.

    Reads only ``width``, ``height`` and ``pixels`` (see ``parse_drawing``), so requests that
    carry a drawing and more (other keys) can share it.
    """
    if "pixels" not in request:
        raise bad_request('missing "pixels": a flat list of width*height numbers from 0 to 255')
    width, height = (_side(request, key) for key in ("width", "height"))
    pixels = request["pixels"]
    if not isinstance(pixels, list):
        raise bad_request(f'"pixels" must be a flat list of numbers, got {type(pixels).__name__}')
    if len(pixels) != width * height:
        raise bad_request(f'"pixels" has {len(pixels)} values, but width {width} x height '
                          f'{height} needs {width * height}')
    _check_pixel_values(pixels)
    gray = np.array(pixels, dtype=np.float64)
    return (gray / 255).astype(np.float32).reshape(height, width)


def _side(request, key):
    """``request[key]`` (``"width"`` or ``"height"``, default 280): an int from 1 to ``MAX_SIDE``."""
    value = request.get(key, DEFAULT_SIDE)
    if type(value) is not int or not 1 <= value <= MAX_SIDE:  # not bool, not 280.0
        raise bad_request(f'"{key}" must be an integer from 1 to {MAX_SIDE}, got {value!r}'[:200])
    return value


def _check_pixel_values(pixels):
    """Refuses the first entry of ``pixels`` that is not a number from 0 to 255."""
    for index, value in enumerate(pixels):
        if type(value) not in (int, float):     # not bool, str, list, None
            raise bad_request(f'"pixels"[{index}] is {json.dumps(value)[:40]}, not a number')
        if not 0 <= value <= 255:
            raise bad_request(f'"pixels"[{index}] is {value!r:.40}, outside 0..255')
