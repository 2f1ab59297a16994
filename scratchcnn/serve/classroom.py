"""The teacher's token: when the page is open to a room, only the teacher starts and stops training.

A server bound to a loopback address (the default, 127.0.0.1) is open to this computer only and
needs no token. Bound beyond it (``--host 0.0.0.0``), every client, whatever its own address,
needs the token for ``POST /api/train`` and ``POST /api/train/stop`` (403 without it); drawing,
predicting, the backward pass and following a job's events stay open to everyone.

A request carries the token as the query parameter ``?token=T`` or the header
``Authorization: token T`` (as Jupyter does). It is compared in constant time
(``hmac.compare_digest``: how long a wrong guess takes says nothing about how close it was), and
never logged: ``hide_token`` blanks it from every line the server prints about a request.
"""
import hmac
import io
import ipaddress
import re
import secrets
import socket
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote, urlsplit

from .parsing import RequestError

TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9_.~-]{8,128}")   # URL-safe: ?token= needs no escaping
TEACHERS_ONLY = ("training is the teacher's: this server is open to the room, so starting and "
                 "stopping a training job needs the teacher's token (the teacher's address the "
                 "server printed, with ?token=...). Drawing and looking inside work for everyone.")
# key=value in a query string whose key, decoded, is "token": the value is hidden in logs.
QUERY_PAIR = re.compile(r"([?&;])([^=&;\s#]*)=([^&;\s#]*)")
AUTHORIZATION_TOKEN = re.compile(r"(authorization:\s*token\s+)\S+", re.IGNORECASE)


def is_loopback(host):
    """True when ``host`` (a bind address or name) is this computer only: 127.x.x.x, ::1, localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token():
    """A fresh random token: 32 URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


def check_token(text):
    """``--token``: ``text`` if it is 8 to 128 URL-safe characters, else ``ValueError`` saying so."""
    if not TOKEN_CHARACTERS.fullmatch(text):
        raise ValueError("--token must be 8 to 128 characters from A-Z, a-z, 0-9 and _ . ~ - "
                         "(so it fits in an address as it is); leave it out for a random one")
    return text


def presented_token(path, headers):
    """The token a request carries: ``?token=T`` in ``path`` or ``Authorization: token T``; or None."""
    for key, value in parse_qsl(urlsplit(path).query, keep_blank_values=True):
        if key == "token":
            return value
    scheme, _, value = (headers.get("Authorization") or "").strip().partition(" ")
    if scheme.lower() == "token" and value.strip():
        return value.strip()
    return None


def token_matches(presented, token):
    """``presented == token``, in constant time (``hmac.compare_digest`` on the UTF-8 bytes)."""
    return presented is not None and hmac.compare_digest(presented.encode(), token.encode())


def is_teacher(request):
    """True when ``request`` may train: the server needs no token, or the request carries it."""
    token = request.server.token
    return token is None or token_matches(presented_token(request.path, request.headers), token)


def require_teacher(request):
    """``RequestError`` 403 unless ``request`` may start and stop training (``is_teacher``)."""
    if not is_teacher(request):
        raise RequestError(HTTPStatus.FORBIDDEN, TEACHERS_ONLY)


def hide_token(text):
    """``text`` (a line about a request) with every ``token=`` value and ``Authorization: token``
    value replaced by ``[hidden]``; a key written ``%74oken`` counts as ``token`` too."""
    def hide(match):
        if unquote(match.group(2)).lower() == "token":
            return f"{match.group(1)}{match.group(2)}=[hidden]"
        return match.group(0)
    return AUTHORIZATION_TOKEN.sub(r"\1[hidden]", QUERY_PAIR.sub(hide, text))


def students_host(bind_host):
    """The address students type: the bind address itself, or for a wildcard bind (0.0.0.0)
    this computer's address on the local network (``local_network_address``)."""
    if bind_host not in ("0.0.0.0", ""):
        return bind_host
    return local_network_address() or socket.gethostname()


def local_network_address():
    """This computer's address on its local network (the one its default route leaves by), or
    None. A UDP socket's ``connect`` only picks the route: no packet is sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))      # TEST-NET-1 (RFC 5737): any routable address does
            address = probe.getsockname()[0]
        except OSError:                          # no network at all
            return None
    return None if is_loopback(address) or address == "0.0.0.0" else address


def addresses(bind_host, port, token):
    """``(students' URL, teacher's URL)`` of a server bound to ``bind_host:port`` with ``token``."""
    host = students_host(bind_host)
    students = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    return students, f"{students}?token={token}"


def qr_code_text(url):
    """``url`` as a QR code drawn with Unicode half blocks, for a terminal; or None when segno
    (a declared dependency) is missing."""
    try:
        import segno
    except ImportError:
        return None
    out = io.StringIO()
    segno.make(url, error="m").terminal(out=out, compact=True)
    return out.getvalue()
