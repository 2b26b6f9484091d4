"""Logging filters that keep raw worker ids out of logs.

MTurk puts ``workerId`` in the task page's query string, and the built-in marketplace may take
a worker id from any query parameter a batch names; so request log lines drop the whole query
string rather than guess which parameter holds an id.
"""

import logging
import re

_QUERY = re.compile(r"\?[^\s\"']*")


def scrub_query_strings(text: str) -> str:
    return _QUERY.sub("?…", text)


class DropQueryStrings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = scrub_query_strings(message), ()
        return True
