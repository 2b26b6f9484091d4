from django.apps import AppConfig


class CurationConfig(AppConfig):
    name = "curation"
    verbose_name = "Curation"

    def ready(self) -> None:
        # The apps below curation reach it only through these hooks, never by importing it.
        from annotation.kinds.review import suggestion_source_register
        from annotation.label_errors import probabilities_source_register
        from hits.hooks import batch_complete_hook_register
        from hits.models import ItemSelection
        from hits.planning import item_selection_register

        from .probabilities import dataset_probabilities
        from .selectors import issue_suggestions, review_batch_items

        batch_complete_hook_register(_batch_completed)
        item_selection_register(ItemSelection.CURATION, review_batch_items)
        suggestion_source_register(issue_suggestions)
        probabilities_source_register(dataset_probabilities)


def _batch_completed(batch_id: int) -> None:
    # The services load when a batch completes, not at every process start (commands included).
    from .services import auto_loop_batch_completed

    auto_loop_batch_completed(batch_id)
