"""Request log lines never carry a raw worker id from the task URL."""

import logging

from annotation.log_filters import DropQueryStrings


def test_request_log_line_loses_its_query_string(caplog):
    logger = logging.getLogger("django.server.test-scrub")
    logger.addFilter(DropQueryStrings())
    with caplog.at_level(logging.INFO, logger="django.server.test-scrub"):
        logger.info(
            '"%s" %s %s',
            "GET /task/3/?assignmentId=A1&hitId=H1&workerId=A3RAWWORKER9&turkSubmitTo=x HTTP/1.1",
            200,
            5120,
        )
    assert "A3RAWWORKER9" not in caplog.text
    assert '"GET /task/3/?… HTTP/1.1" 200 5120' in caplog.text


def test_gunicorn_access_format_has_no_query_string():
    from annotation import gunicorn_conf

    assert "%(r)s" not in gunicorn_conf.access_log_format
    assert "%(q)s" not in gunicorn_conf.access_log_format
    assert "%(U)s" in gunicorn_conf.access_log_format
