"""The peer: LemonLDAP::NG 2.16 (Debian packages), protecting the same app in its documented nginx set-up.

LL::NG's nginx deployment is our mode 1: ``auth_request`` to a location that
speaks FastCGI to ``llng-fastcgi-server``, whose handler checks the
``lemonldap`` session cookie and answers with ``Auth-User`` headers (and
``Location`` for 401). Its shipped configuration is used unchanged
(``/etc/lemonldap-ng/lemonldap-ng.ini`` and ``lmConf-1.json``: the Demo
authentication backend, users ``dwho``/``dwho``, sites ``*.example.com``,
sessions in files); the nginx server blocks below are the shipped
``/etc/lemonldap-ng/portal-nginx.conf`` and the handler's ``test-nginx.conf``
example (its variant without Lua), with our ports and socket, and with the
example's local files replaced by ``proxy_pass`` to the app. One FastCGI
server (its default of 7 processes) serves both the portal and the handler,
as the Debian service does.

Its handler caches a checked session for ``handlerInternalCache`` seconds
(default 15) in memory in each of its processes; the gateway remembers a
verified cookie for 5 s. Both still check the rules on every request.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import httpx

from bench.peer import RUN_AS, PeerServer
from bench.signin_load import first_form
from devtools.processes import Process

LLNG_SERVER = "/usr/sbin/llng-fastcgi-server"
FASTCGI_PARAMS = "/etc/nginx/fastcgi_params"
PORTAL_ROOT = "/usr/share/lemonldap-ng/portal/htdocs/"
PORTAL_HOST = "auth.example.com"  # lmConf-1.json: portal http://auth.example.com/
SITE_HOST = "test1.example.com"  # lmConf-1.json: a site with Auth-User in its exportedHeaders
COOKIE_NAME = "lemonldap"
DEMO_USER = ("dwho", "dwho")
START_TIMEOUT = 30.0
INSTALL_HINT = ("apt-get install lemonldap-ng lemonldap-ng-fastcgi-server (make system-deps installs it with the "
                "modules its portal needs)")

SERVER_BLOCKS = """
    # Added by the benchmark (bench/llng.py): LemonLDAP::NG's portal, from /etc/lemonldap-ng/portal-nginx.conf.
    server {
        listen 127.0.0.1:%(port)d;
        server_name %(portal)s;
        root %(portal_root)s;
        if ($uri !~ ^/((static|javascript|favicon).*|.*\\.psgi)) {
            rewrite ^/(.*)$ /index.psgi/$1 break;
        }
        location ~ ^(?<sc>/.*\\.psgi)(?:$|/) {
            include %(fastcgi_params)s;
            fastcgi_pass unix:%(socket)s;
            fastcgi_param HTTP_HOST $host;
            fastcgi_param LLTYPE psgi;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_split_path_info ^(.*\\.psgi)(/.*)$;
            fastcgi_param PATH_INFO  $fastcgi_path_info;
        }
    }

    # The protected site, from the handler's test-nginx.conf example (its variant without Lua).
    server {
        listen 127.0.0.1:%(port)d;
        server_name %(site)s;
        location = /lmauth {
            internal;
            include %(fastcgi_params)s;
            fastcgi_pass unix:%(socket)s;
            fastcgi_pass_request_body  off;
            fastcgi_param CONTENT_LENGTH "";
            fastcgi_param HTTP_HOST $host;
            fastcgi_param X_ORIGINAL_URI $original_uri;
        }
        location / {
            set $original_uri $uri$is_args$args;
            auth_request /lmauth;
            auth_request_set $lmremote_user $upstream_http_lm_remote_user;
            auth_request_set $lmremote_custom $upstream_http_lm_remote_custom;
            auth_request_set $lmlocation $upstream_http_location;
            error_page 401 $lmlocation;
            auth_request_set $authuser $upstream_http_auth_user;
            proxy_set_header Auth-User $authuser;
            auth_request_set $lmcookie $upstream_http_cookie;
            proxy_set_header Cookie $lmcookie;
            # The example serves local files; here the same app as every other row, as bench/stacks.py proxies.
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
        }
    }
"""


class LLNGError(RuntimeError):
    """LemonLDAP::NG did not start, or would not sign the demo user in."""


class LLNGNotInstalled(LLNGError):
    """Its packages are missing: the benchmark cannot run (it never leaves the peer's row out)."""


def check_installed() -> None:
    for required in (LLNG_SERVER, FASTCGI_PARAMS, PORTAL_ROOT):
        if not os.path.exists(required):
            raise LLNGNotInstalled(f"{required} is missing: {INSTALL_HINT}")


def server_blocks(port: int, socket_path: Path) -> str:
    """The portal and the protected site, for nginx's ``http`` block (the app is ``upstream app``)."""
    return SERVER_BLOCKS % {"port": port, "portal": PORTAL_HOST, "site": SITE_HOST, "portal_root": PORTAL_ROOT,
                            "fastcgi_params": FASTCGI_PARAMS, "socket": socket_path}


class LLNGHandler(PeerServer):
    """``llng-fastcgi-server`` on a Unix socket that nginx's workers (user ``nobody``) can open."""

    def __init__(self, log_path: Path) -> None:
        check_installed()
        super().__init__(log_path, "bench-llng-")
        self.socket = self.dir / "llng-fastcgi.sock"

    def start(self) -> LLNGHandler:
        as_root = self.give_directory_to_workers()
        argv = [LLNG_SERVER, "--foreground", "-s", str(self.socket), "-p", str(self.dir / "llng.pid")]
        if as_root:  # it refuses to run as root; the Debian service runs it as www-data
            argv += ["-u", RUN_AS, "-g", RUN_AS]
        # Its log goes to the log file (stderr) instead of syslog; the level stays the shipped "warn".
        self.process = Process(argv, env={"LLNG_DEFAULTLOGGER": "Lemonldap::NG::Common::Logger::Std"},
                               log_path=self.log_path, name="llng")
        self.process.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._accepts():
            if not self.process.running or time.monotonic() > deadline:
                output = self.process.output(tail=30)
                self.stop()
                raise LLNGError(f"llng-fastcgi-server did not listen on {self.socket}:\n{output}")
            time.sleep(0.05)
        if as_root:  # created with its umask: let nginx's workers (nobody) connect
            self.socket.chmod(0o666)
        return self

    def _accepts(self) -> bool:
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(str(self.socket))
            except OSError:
                return False
            return True



def session_cookie(url: str, check_path: str, user: tuple[str, str] = DEMO_USER, timeout: float = 60.0) -> str:
    """Sign in at the portal (``url``: the nginx serving it) and return the ``lemonldap`` cookie's value.

    The login form carries an anti-forgery ``token`` that must come back with
    the user name and password. The cookie is then tried on ``check_path`` of
    the protected site: a cookie the handler refuses would make every benchmark
    request a redirect.
    """
    with httpx.Client(base_url=url, timeout=timeout, trust_env=False) as client:
        page = client.get("/", headers={"Host": PORTAL_HOST})
        if page.status_code != 200:
            raise LLNGError(f"portal login page: HTTP {page.status_code}: {page.text[:300]!r}")
        fields = first_form(page.text).fields
        if not fields.get("token"):
            raise LLNGError(f"portal login page without its token field: {page.text[:300]!r}")
        answer = client.post("/", headers={"Host": PORTAL_HOST},
                             data={**fields, "user": user[0], "password": user[1]})
        # Its cookie is for .example.com: read it from the header, not from a jar that checks domains.
        value = next((v.split(";", 1)[0].partition("=")[2] for v in answer.headers.get_list("set-cookie")
                      if v.startswith(COOKIE_NAME + "=")), "")
        if answer.status_code not in (200, 302) or not value:
            raise LLNGError(f"portal sign-in as {user[0]}: HTTP {answer.status_code}, no {COOKIE_NAME} cookie: "
                            f"{answer.text[:300]!r}")
        check = client.get(check_path, headers={"Host": SITE_HOST, "Cookie": f"{COOKIE_NAME}={value}"})
        if check.status_code != 200:
            raise LLNGError(f"the protected site refused the new session: HTTP {check.status_code}")
    return value


__all__ = ["COOKIE_NAME", "SITE_HOST", "LLNGError", "LLNGHandler", "LLNGNotInstalled", "check_installed",
           "server_blocks", "session_cookie"]
