"""gunicorn settings: ``gunicorn -c python:annotation.gunicorn_conf annotation.wsgi``.

The access log records the path without its query string (%(U)s, not %(r)s): task URLs carry
MTurk's raw ``workerId`` there, and raw worker ids are never logged.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
