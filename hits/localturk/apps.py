from django.apps import AppConfig


class LocalTurkConfig(AppConfig):
    name = "hits.localturk"
    label = "localturk"
    verbose_name = "MTurk stand-in (offline testing)"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the deploy check
