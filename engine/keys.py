"""CURVE keys for a remote engine: the key folder, the client-side key pair, the authoriser.

A key folder (`sfumato keys new DIR`) holds the engine's pair and the authorised clients:

    DIR/server.key          the engine's public key: every client needs a copy
    DIR/server.key_secret   the engine's secret key (mode 0600, never leaves the engine's host)
    DIR/clients/NAME.key    one authorised client's public key per file
    DIR/issued/NAME.key_secret  a client's key pair as `keys add-client` wrote it, to hand over

Files are ZeroMQ certificates (pyzmq's `zmq.auth` format, readable by czmq). The engine asks
`ClientKeys` at every CURVE handshake, and `ClientKeys` looks at `clients/` each time, so adding
or deleting a file takes effect for the next connection without a restart.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import zmq
from zmq.auth.certs import create_certificates, load_certificate

SERVER = "server"
CLIENTS = "clients"
ISSUED = "issued"
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ENV_SERVER_KEY = "SFUMATO_SERVER_KEY"  # the client-side options' environment variables
ENV_CLIENT_KEY = "SFUMATO_CLIENT_KEY"


class KeyFileError(ValueError):
    """A key folder or key file that cannot be used; the message says what to do."""


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise KeyFileError(f"client name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit")
    return name


@contextmanager
def _scratch_pair(folder: Path, name: str) -> Iterator[tuple[Path, Path]]:
    """A fresh key pair (NAME.key 0644, NAME.key_secret 0600) in a private (0700) scratch folder
    inside `folder`, removed afterwards: a secret is never readable by others, not even for a
    moment, and moves into `folder` are renames on one file system."""
    folder.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".keys-", dir=folder))
    try:
        public, secret = (Path(p) for p in create_certificates(scratch, name))
        os.chmod(secret, 0o600)
        os.chmod(public, 0o644)
        yield public, secret
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 from the start; never over an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def new_server(folder: str | os.PathLike, force: bool = False) -> Path:
    """Write the engine's key pair into `folder` (and an empty clients/); returns the public key
    file. Refuses to replace an existing pair unless `force` (every client would need the new one)."""
    folder = Path(folder)
    if (folder / (SERVER + SECRET_SUFFIX)).exists() and not force:
        raise KeyFileError(f"{folder} already has an engine key pair; pass --force to replace it "
                           "(every client then needs the new server.key)")
    with _scratch_pair(folder, SERVER) as (public, secret):
        os.replace(secret, folder / secret.name)
        os.replace(public, folder / public.name)
    (folder / CLIENTS).mkdir(exist_ok=True)
    return folder / public.name


def add_client(folder: str | os.PathLike, name: str, out: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Make a client key pair and authorise it: its public key goes to clients/NAME.key, the
    pair (secret file, 0600) to `out` (default issued/NAME.key_secret). Returns both paths."""
    folder = Path(folder)
    check_name(name)
    server_secret(folder)  # a folder without an engine pair is a mistake: say so now
    authorised = folder / CLIENTS / (name + PUBLIC_SUFFIX)
    if authorised.exists():
        raise KeyFileError(f"a client named {name!r} is already authorised ({authorised}); revoke it first")
    target = Path(out) if out is not None else folder / ISSUED / (name + SECRET_SUFFIX)
    if target.exists():
        raise KeyFileError(f"{target} already exists; choose another --out or remove it")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # issued/: secrets waiting to be handed over
    with _scratch_pair(folder, name) as (public, secret):
        _write_private(target, secret.read_bytes())  # --out may be on another file system
        (folder / CLIENTS).mkdir(exist_ok=True)
        os.replace(public, authorised)  # last: the key is authorised only once its pair exists
    return authorised, target


def list_clients(folder: str | os.PathLike) -> dict[str, str]:
    """Authorised clients, by name: name -> public key (z85)."""
    return {name: key.decode("ascii") for key, name in sorted(ClientKeys(folder).current().items(),
                                                                key=lambda item: item[1])}


def revoke(folder: str | os.PathLike, name: str) -> Path:
    """Remove a client's authorisation (and the pair issued to it, if still here). The engine
    refuses the key from its next connection on."""
    folder = Path(folder)
    path = folder / CLIENTS / (check_name(name) + PUBLIC_SUFFIX)
    if not path.exists():
        raise KeyFileError(f"no authorised client named {name!r} in {folder / CLIENTS}")
    path.unlink()
    (folder / ISSUED / (name + SECRET_SUFFIX)).unlink(missing_ok=True)
    return path


def _load(path: str | os.PathLike, want_secret: bool) -> tuple[bytes, bytes | None]:
    if not Path(path).is_file():
        raise KeyFileError(f"no key file {path}")
    try:
        public, secret = load_certificate(path)
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise KeyFileError(f"{path} is not a ZeroMQ key file (made by `sfumato keys`)") from None
    if want_secret and not secret:
        raise KeyFileError(f"{path} holds only a public key; a client needs its .key_secret file")
    return public, secret


def server_secret(folder: str | os.PathLike) -> tuple[bytes, bytes]:
    """The engine's (public, secret) key from a key folder."""
    path = Path(folder) / (SERVER + SECRET_SUFFIX)
    if not path.exists():
        raise KeyFileError(f"{folder} has no engine key pair; create one with `sfumato keys new {folder}`")
    public, secret = _load(path, want_secret=True)
    assert secret is not None
    return public, secret


@dataclass(frozen=True)
class ClientCurve:
    """What a client socket needs for CURVE: the engine's public key and its own pair."""

    server_public: bytes
    public: bytes
    secret: bytes

    @classmethod
    def from_files(cls, server_key: str | os.PathLike, client_key: str | os.PathLike) -> "ClientCurve":
        """`server_key`: the engine's server.key; `client_key`: this client's NAME.key_secret."""
        server_public, _ = _load(server_key, want_secret=False)
        public, secret = _load(client_key, want_secret=True)
        assert secret is not None
        return cls(server_public, public, secret)

    @classmethod
    def optional(cls, server_key: str | os.PathLike | None, client_key: str | os.PathLike | None
                 ) -> "ClientCurve | None":
        """Both files, or neither (no CURVE); one alone is a mistake worth a clear error."""
        if not server_key and not client_key:
            return None
        if not server_key or not client_key:
            raise KeyFileError("CURVE needs both the engine's public key (--server-key, "
                               f"{ENV_SERVER_KEY}) and this client's key pair (--client-key, {ENV_CLIENT_KEY})")
        return cls.from_files(server_key, client_key)

    def apply(self, sock: zmq.Socket) -> None:
        """Set before connect()."""
        sock.setsockopt(zmq.CURVE_SERVERKEY, self.server_public)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret)


HANDSHAKE_EVENTS = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)


def refusal(event: int, address: str, keyed: bool) -> str:
    """What a failed handshake means, for a person (the monitor event says who refused what)."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return (f"the engine at {address} refused this client key (not authorised, or revoked): ask the "
                "engine's operator to authorise it (`sfumato keys add-client`)")
    if not keyed:
        return (f"the engine at {address} requires a client key (CURVE): pass --server-key and --client-key "
                f"(or set {ENV_SERVER_KEY} and {ENV_CLIENT_KEY})")
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        return f"the engine at {address} does not use keys (CURVE); connect without --server-key/--client-key"
    return (f"the engine at {address} refused the handshake: --server-key is not this engine's public key "
            "(server.key of its key folder), or the engine refused this key")


class HandshakeWatch:
    """The handshakes of a client socket, from its monitor. ZeroMQ keeps a refused handshake to
    itself (the socket just retries), so this is how a client can say why nothing comes back.
    Used by the thread that owns the socket; poll `.socket` for events, then call `read()`."""

    def __init__(self, sock: zmq.Socket, address: str, keyed: bool):
        self._sock, self.address, self.keyed = sock, address, keyed
        self.socket = sock.get_monitor_socket(HANDSHAKE_EVENTS)  # before connect(): no event is missed
        self.refused: str | None = None  # why the last handshake failed; None after a good one
        self.handshakes = 0

    def read(self) -> bool:
        """Take the pending events; True if a handshake succeeded after an earlier one (a reconnect)."""
        from zmq.utils.monitor import recv_monitor_message

        reconnected = False
        while True:
            try:
                event = recv_monitor_message(self.socket, zmq.NOBLOCK)["event"]
            except zmq.Again:
                return reconnected
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.refused = None
                self.handshakes += 1
                reconnected = reconnected or self.handshakes > 1
            else:
                self.refused = refusal(event, self.address, self.keyed)

    def close(self) -> None:
        """Before the socket is closed (frees the monitor's inproc address for the next socket)."""
        self._sock.disable_monitor()
        self.socket.close(0)


class ClientKeys:
    """The authorised client keys of a key folder, as they are on disk now.

    Called by the ZAP authenticator's thread at each handshake (`callback`) and by the engine's
    socket thread (`name_of`), hence the lock. Each call lists `clients/` (a few stat calls) and
    parses only files that are new or changed, so a removed file is refused at once."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder) / CLIENTS
        self._lock = threading.Lock()
        self._files: dict[tuple[str, int, int, int], tuple[bytes, str] | None] = {}  # stat -> (key, name)

    def current(self) -> dict[bytes, str]:
        """Authorised keys now: z85 public key -> client name."""
        try:
            entries = [e for e in os.scandir(self.folder)
                       if e.name.endswith(PUBLIC_SUFFIX) and not e.name.startswith(".") and e.is_file()]
        except OSError:
            entries = []
        with self._lock:
            files: dict[tuple[str, int, int, int], tuple[bytes, str] | None] = {}
            for entry in entries:
                st = entry.stat()
                stamp = (entry.name, st.st_ino, st.st_mtime_ns, st.st_size)
                if stamp in self._files:
                    files[stamp] = self._files[stamp]
                    continue
                try:
                    public, _ = load_certificate(entry.path)
                    files[stamp] = (public, entry.name[:-len(PUBLIC_SUFFIX)])
                except (OSError, ValueError):
                    files[stamp] = None  # not a key file: authorises nothing
            self._files = files
            return {found[0]: found[1] for found in files.values() if found is not None}

    def callback(self, domain: str, key: bytes) -> bool:
        """zmq.auth credentials provider: is this z85 public key authorised now?"""
        return key in self.current()

    def name_of(self, key: str) -> str | None:
        """The client name of an authorised z85 key, or None (unknown or revoked)."""
        return self.current().get(key.encode("ascii"))


class ServerCurve:
    """The engine's side: its key pair on the ROUTER and a ZAP authenticator thread that asks
    `ClientKeys` at each handshake. ZeroMQ gives each message of an authenticated connection
    the client's z85 public key as its "User-Id" property (engine/peers.py uses it)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.public, self._secret = server_secret(self.folder)
        self.clients = ClientKeys(self.folder)
        self._auth: Any = None  # zmq.auth.thread.ThreadAuthenticator once started

    def start(self, ctx: zmq.Context, router: zmq.Socket) -> None:
        """Start the authenticator and make `router` a CURVE server; call before bind()."""
        from zmq.auth.thread import ThreadAuthenticator  # asyncio underneath: only the engine pays for it

        self._auth = ThreadAuthenticator(ctx, log=logging.getLogger("sfumato.auth"))
        self._auth.start()
        self._auth.configure_curve_callback("*", self.clients)
        router.setsockopt(zmq.CURVE_SERVER, 1)
        router.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        router.setsockopt(zmq.CURVE_SECRETKEY, self._secret)

    def stop(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
