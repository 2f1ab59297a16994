"""Server-Sent Events: one training job's events, broadcast to every page that listens.

The wire format (``text/event-stream``), one event per block::

    event: progress
    data: {"job": 1, "epoch": 1, "step": 120, ...}

followed by an empty line; lines starting with ``:`` are comments (the heartbeats that keep an
idle connection open). The event names and their data are listed in ``jobs.py``.

``EventHub`` is the broadcaster. The trainer's thread calls ``publish``, which never waits for a
client: each listener has its own queue, filled without blocking and emptied by that listener's
own request thread (``stream_events``). A listener that falls ``MAX_PENDING`` events behind is
dropped (its page reconnects and gets the replay). At most ``max_listeners`` streams are open
at once (every page opens one, so by default well above a class): one more is refused with 503
and ``Retry-After``, since each open stream holds a thread. The hub also keeps a replay of the current
job, so a page that connects in the middle first gets the state so far: the job's start, its
progress points (thinned to at most ``MAX_REPLAY_PROGRESS``), every epoch, the latest snapshot
and, once finished, ``done``.
"""
import json
import queue
import select
import socket
import threading
import time
from http import HTTPStatus

from .parsing import RequestError

MAX_LISTENERS = 200          # event streams open at once, by default (--max-listeners)
RETRY_AFTER_SECONDS = 10     # what a refused stream is told to wait before trying again
MAX_PENDING = 2000           # events a listener may fall behind before it is dropped
MAX_REPLAY_PROGRESS = 500    # progress points kept for late joiners (older ones thinned out)
HEARTBEAT_SECONDS = 15.0     # a comment this often on an otherwise silent stream
POLL_SECONDS = 0.5           # how often a waiting stream checks whether its client left

_END = object()              # queued to a listener when the hub closes


def format_event(name, data):
    """One SSE block: ``event: <name>``, one JSON ``data:`` line, an empty line; as bytes."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Listener:
    """One connected page: the queue of formatted events waiting to be sent to it."""

    def __init__(self, backlog):
        self.queue = queue.SimpleQueue()
        for message in backlog:
            self.queue.put(message)
        self.dropped = False    # set when it fell too far behind

    def next(self, timeout):
        """The next message (bytes), ``_END``, or None after ``timeout`` seconds of silence."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None


class EventHub:
    """Broadcasts events to listeners and keeps the current job's replay (see module docstring)."""

    def __init__(self, max_listeners=MAX_LISTENERS):
        self._lock = threading.Lock()
        self._replay = []        # [(name, bytes)] of the current job, in order
        self._listeners = set()
        self.max_listeners = max_listeners
        self.closed = False

    @property
    def listener_count(self):
        with self._lock:
            return len(self._listeners)

    def publish(self, name, data, new_job=False):
        """Send event ``name`` with JSON-able ``data`` to every listener; never blocks.

        ``new_job=True`` starts a new replay (the event is the first of a job).
        """
        message = format_event(name, data)
        with self._lock:
            if new_job:
                self._replay = []
            self._remember(name, message)
            for listener in list(self._listeners):
                if listener.queue.qsize() >= MAX_PENDING:   # not reading: let it go
                    listener.dropped = True
                    self._listeners.discard(listener)
                    listener.queue.put(_END)
                else:
                    listener.queue.put(message)

    def _remember(self, name, message):
        """Add an event to the replay: only the latest snapshot, progress thinned out."""
        if name == "snapshot":
            self._replay = [entry for entry in self._replay if entry[0] != "snapshot"]
        self._replay.append((name, message))
        if name == "progress" and sum(n == "progress" for n, _ in self._replay) > MAX_REPLAY_PROGRESS:
            progress_seen, kept = 0, []
            for entry in self._replay:          # drop every second progress point
                if entry[0] == "progress":
                    progress_seen += 1
                    if progress_seen % 2 == 0 and entry is not self._replay[-1]:
                        continue
                kept.append(entry)
            self._replay = kept

    def subscribe(self):
        """A new ``Listener``, its queue starting with the replay (atomically: no event is missed
        or sent twice); None when ``max_listeners`` are already listening."""
        with self._lock:
            if len(self._listeners) >= self.max_listeners and not self.closed:
                return None
            listener = Listener([message for _, message in self._replay])
            if self.closed:
                listener.queue.put(_END)
            else:
                self._listeners.add(listener)
            return listener

    def unsubscribe(self, listener):
        with self._lock:
            self._listeners.discard(listener)

    def close(self):
        """End every stream (the server is shutting down)."""
        with self._lock:
            self.closed = True
            for listener in self._listeners:
                listener.queue.put(_END)
            self._listeners.clear()


def client_left(connection):
    """True when the peer of ``connection`` (a socket) has closed it: it is readable and a peek
    reads nothing (or fails). A page never sends anything on an event stream."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def stream_events(request, hub, heartbeat=HEARTBEAT_SECONDS):
    """Answer ``request`` with the hub's events until the client leaves or the hub closes.

    Runs in the request's own thread; ``RequestError`` 503 when the hub has no room for one
    more listener. A heartbeat comment goes out after ``heartbeat`` seconds
    without an event; a client that closed its end is noticed within ``POLL_SECONDS`` even when
    nothing is sent, and a write that fails (reset, broken pipe, the handler's socket timeout
    for a client that stopped reading) ends the stream: either way the thread is freed.
    """
    listener = hub.subscribe()
    if listener is None:
        raise RequestError(HTTPStatus.SERVICE_UNAVAILABLE,
                           f"{hub.max_listeners} pages already follow training, the most this server "
                           f"takes (--max-listeners); try again in {RETRY_AFTER_SECONDS} seconds",
                           headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    request.close_connection = True
    try:
        request.send_head(HTTPStatus.OK, "text/event-stream", headers={"X-Accel-Buffering": "no"})
        request.wfile.write(b": scratchcnn training events\nretry: 2000\n\n")
        last_sent = time.monotonic()
        while True:
            message = listener.next(timeout=POLL_SECONDS)
            if message is _END:
                return
            if message is None:
                if client_left(request.connection):
                    return
                if time.monotonic() - last_sent < heartbeat:
                    continue
                message = b": heartbeat\n\n"
            request.wfile.write(message)
            last_sent = time.monotonic()
    except OSError:     # the client went away mid-write
        pass
    finally:
        hub.unsubscribe(listener)
