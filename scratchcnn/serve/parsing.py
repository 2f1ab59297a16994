"""Request parsing and validation: what a client sent -> checked Python values.

Every refusal is a ``RequestError``: an HTTP status and a message saying what was wrong and what
was expected. The handler answers it as ``{"error": message}``.
"""
import base64
import binascii
import io
import json
from http import HTTPStatus

import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_BODY_BYTES = 1024 * 1024   # 1 MiB: a 280x280 drawing as JSON is 160-320 KB
MAX_SIDE = 1024                # largest accepted drawing width or height, in pixels
DEFAULT_SIDE = 280             # the page's canvas
DRAWING_EXAMPLE = '{"width": 280, "height": 280, "pixels": [...]}'
PNG_MODES = ("1", "L", "LA", "P", "RGB", "RGBA")   # 8-bit PNGs; 16-bit grey is refused


class RequestError(Exception):
    """A request we refuse: an HTTP status, a message for the client and, for 405, the methods
    the path does take (``allow``, sent as the ``Allow`` header); ``headers``: any other
    headers to send with the refusal (``Retry-After`` for a 503)."""

    def __init__(self, status, message, allow=None, headers=None):
        super().__init__(message)
        self.status, self.message, self.allow = status, message, allow
        self.headers = dict(headers or {}, **({"Allow": allow} if allow else {}))


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
    ``height`` default to 280. Or, compact, ``{"png": "<base64 PNG>"}`` (see ``gray_from_png``).
    Either polarity works (white on black, as the page draws, or black on white), like
    ``predict``. Raises ``RequestError`` (400) saying what is wrong.
    """
    return drawing_from(parse_json_object(body))


def drawing_from(request):
    """A parsed request object -> its drawing, ``(height, width)`` float32 in ``[0, 1]``.

    Reads only ``width``, ``height`` and ``pixels`` or ``png`` (see ``parse_drawing``), so
    requests that carry a drawing and more (other keys) can share it.
    """
    if "png" in request:
        if "pixels" in request:
            raise bad_request('send the drawing once: either "pixels" or "png", not both')
        gray = gray_from_png(request["png"])
        for key, size in (("width", gray.shape[1]), ("height", gray.shape[0])):
            if key in request and _side(request, key) != size:
                raise bad_request(f'"{key}" is {request[key]}, but the PNG\'s {key} is {size}')
        return gray
    if "pixels" not in request:
        raise bad_request('missing "pixels": a flat list of width*height numbers from 0 to 255 '
                          '(or "png": the drawing as a base64 PNG)')
    width, height = (_side(request, key) for key in ("width", "height"))
    pixels = request["pixels"]
    if not isinstance(pixels, list):
        raise bad_request(f'"pixels" must be a flat list of numbers, got {type(pixels).__name__}')
    if len(pixels) != width * height:
        raise bad_request(f'"pixels" has {len(pixels)} values, but width {width} x height '
                          f'{height} needs {width * height}')
    gray = _pixel_array(pixels)
    return (gray / 255).astype(np.float32).reshape(height, width)


def gray_from_png(text):
    """``"png"``: a PNG as base64 (or a ``data:image/png;base64,...`` URL, as a canvas's
    ``toDataURL`` gives it) -> ``(height, width)`` float32 in ``[0, 1]``, or a 400.

    Colour is turned into grey (``convert("L")``: a grey pixel keeps its level, so the page's
    white-on-black canvas gives exactly the levels its ``pixels`` would); alpha is ignored.
    The size is checked (1 to ``MAX_SIDE`` a side) before anything is decoded.
    """
    if not isinstance(text, str):
        raise bad_request(f'"png" must be a string: a PNG as base64, got {type(text).__name__}')
    if text.startswith("data:"):
        head, _, text = text.partition(",")
        if not head.endswith(";base64"):
            raise bad_request('"png" as a data URL must be base64: data:image/png;base64,...')
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request('"png" is not valid base64') from None
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            width, height = image.size
            if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
                raise bad_request(f'"png" is {width}x{height} pixels; each side must be 1 to {MAX_SIDE}')
            if image.mode not in PNG_MODES:
                raise bad_request(f'"png" has mode {image.mode}; send an 8-bit grey or colour PNG')
            levels = np.asarray(image.convert("L"), dtype=np.float64)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise bad_request(f'"png" is not a PNG image that can be read ({str(e)[:80]})') from None
    return (levels / 255).astype(np.float32)    # as the "pixels" path computes it: the same numbers


def _side(request, key):
    """``request[key]`` (``"width"`` or ``"height"``, default 280): an int from 1 to ``MAX_SIDE``."""
    value = request.get(key, DEFAULT_SIDE)
    if type(value) is not int or not 1 <= value <= MAX_SIDE:  # not bool, not 280.0
        raise bad_request(f'"{key}" must be an integer from 1 to {MAX_SIDE}, got {value!r}'[:200])
    return value


def _pixel_array(pixels):
    """``pixels`` as a float64 array; a 400 naming the first entry that is not a number from 0
    to 255. The common case (ints and floats only, all in range) is checked with NumPy; the
    list is walked only to name a bad entry."""
    if set(map(type, pixels)) <= {int, float}:      # no bool, str, list, None
        try:
            array = np.array(pixels, dtype=np.float64)
        except OverflowError:                       # an int too large for a float: out of range
            array = None
        if array is not None and array.min() >= 0 and array.max() <= 255:
            return array
    raise _first_bad_pixel(pixels)


def _first_bad_pixel(pixels):
    """The 400 for the first entry of ``pixels`` that is not a number from 0 to 255."""
    for index, value in enumerate(pixels):
        if type(value) not in (int, float):     # not bool, str, list, None
            return bad_request(f'"pixels"[{index}] is {json.dumps(value)[:40]}, not a number')
        if not 0 <= value <= 255:
            return bad_request(f'"pixels"[{index}] is {value!r:.40}, outside 0..255')
    return bad_request('"pixels" must hold numbers from 0 to 255')
