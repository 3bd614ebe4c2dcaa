"""gunicorn's settings for the web process (make prod-web, deploy/).

    gunicorn -c config/gunicorn.conf.py config.wsgi

Everything comes from the environment, like the app's own settings
(.env.example lists the variables). Static files are served by the app itself
(WhiteNoise), so gunicorn needs no static route.
"""

import os

# Where to listen: host:port, or unix:/run/campaigns/web.sock behind nginx.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Worker processes (each answers `threads` requests at a time): about 1 per CPU.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads per worker: above 1, gunicorn's gthread workers, which keep
# connections alive (the short-link redirect needs them for its rate: sync
# workers answer one request per connection, and on 2 busy cores did about
# 1,300 redirects/s where 2 workers x 4 threads did 2,500-3,500).
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A request running longer than this many seconds is killed with its worker
# (imports and pre-send checks of large files run on the queue, not here).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel
# spreads new connections over them. With one shared socket the worker that
# woke first took most of them, and a kept-alive connection stays with the
# worker that accepted it: one GIL-bound worker then carried most of the
# load while the other idled (the redirect's p99 went from 5-20 ms to
# 0.1-1.1 s in half the runs). But a worker that exits (max_requests, a
# reload) drops the connections still queued on its socket unless the
# kernel hands them to a sibling (net.ipv4.tcp_migrate_req = 1, Linux 5.14+,
# deploy/sysctl.d/): measured, 105 of 6,300 new connections reset with
# workers recycled every 1,000 requests, none with the setting. So "auto"
# (the default) uses a socket per worker only where the kernel migrates
# them; 1 and 0 force it on or off. A unix socket (behind nginx) stays
# shared: SO_REUSEPORT is for TCP.
MIGRATE_SETTING = "/proc/sys/net/ipv4/tcp_migrate_req"


def kernel_migrates_queued_connections(path: str = MIGRATE_SETTING) -> bool:
    try:
        with open(path) as setting:
            return setting.read().strip() == "1"
    except OSError:  # not Linux, or a kernel before 5.14
        return False


def socket_per_worker(choice: str, address: str, setting=MIGRATE_SETTING) -> bool:
    if address.startswith("unix:") or choice in ("0", "false", "off"):
        return False
    return choice in ("1", "true", "on") or kernel_migrates_queued_connections(setting)


reuse_port = socket_per_worker(os.environ.get("GUNICORN_REUSE_PORT", "auto"), bind)
graceful_timeout = 30
keepalive = 5
# Workers are replaced after this many requests (bounded memory growth). Not
# a few thousand: at the redirect's rate (over 1,000 a second per worker)
# that loaded Django again, with new database connections, every second.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "100000"))
max_requests_jitter = max_requests // 10

# Whether a request came over HTTPS is decided by Django alone
# (BEHIND_TLS_PROXY): gunicorn's own trust of X-Forwarded-Proto from local
# peers is turned off, so a plain-HTTP request claiming HTTPS is not believed
# unless the operator says a TLS proxy is in front.
secure_scheme_headers = {}

# The access log goes to stderr (the journal, docker logs). It shows the path
# without the query string and no referrer: an admin search or a filter can
# hold a phone number, and a log line cannot be erased later.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
# Phone numbers in gunicorn's own lines are masked, as in the app's.
logger_class = "config.gunicorn_logging.MaskedLogger"


def on_starting(server):
    """With a socket per worker, a second gunicorn started on the same port
    would silently share it (SO_REUSEPORT) instead of failing: an old
    release left running would answer half the requests. So the port must
    be free when the master starts, as it must be without the option."""
    if not reuse_port:
        if not bind.startswith("unix:"):
            server.log.info(
                "Workers share one listening socket: set net.ipv4.tcp_migrate_req"
                " = 1 (deploy/sysctl.d/) to give each its own (GUNICORN_REUSE_PORT)"
            )
        return
    import socket

    host, _, port = bind.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Connections of a previous run in TIME_WAIT don't count: only a
        # socket listening there makes the bind fail.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
        except OSError as error:
            raise SystemExit(
                f"gunicorn: {bind} is already in use ({error.strerror}); "
                "stop the process listening there first."
            ) from None


def post_fork(server, worker):
    """A worker with its own socket listens only once it can answer
    (post_worker_init): gunicorn opens the socket at the fork, and the kernel
    then queued connections on it for the second or so the worker spent
    loading Django (the redirect's first second: answers after 0.7 s)."""
    if reuse_port:
        for listener in worker.sockets:
            listener.close()  # nothing queued yet (or migrated to a sibling)
        worker.sockets = []


def post_worker_init(worker):
    """Once the app is loaded: its objects (Django, the URLconf, the models)
    live as long as the worker, so the garbage collector's full passes stop
    scanning them. A full pass over them took 80-120 ms on 2 busy cores,
    during which no request of the worker moved (the redirect's tail).
    Then a worker with its own socket starts listening (post_fork)."""
    import gc

    gc.freeze()
    if reuse_port:
        from gunicorn import sock

        worker.sockets = sock.create_sockets(worker.cfg, worker.log)
        worker.wait_fds = [*worker.sockets, worker.PIPE[0]]  # sync workers


def worker_exit(server, worker):
    """Clicks a worker buffered are written before it goes (max_requests,
    SIGTERM, a reload): campaigns.tracking.click_buffer."""
    from campaigns.tracking import click_buffer

    click_buffer.flush()
