"""The embedded broker: kombu's filesystem transport, with each message written atomically.

kombu's own transport creates a message file under its final name and then writes it; a worker
polling the folder can move and read the file in between, find it empty and stop with
"Unrecoverable error: JSONDecodeError". Here the message is written under a name the reader
skips (it takes only ``*.<queue>.msg``) and renamed into place, so a reader sees a whole message
or none. Used when ``CELERY_BROKER_URL`` is ``filesystem://`` (``annotation.settings``).
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put ``payload`` onto ``queue``: written beside the folder's messages, then renamed."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = f"{final}.part"
        try:
            with open(partial, "wb") as fh:
                fh.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
