from django.apps import AppConfig


class CurationConfig(AppConfig):
    name = "curation"
    verbose_name = "Curation"

    def ready(self) -> None:
        # The apps below curation reach it only through these hooks, never by importing it.
        from annotation.kinds.review import suggestion_source_register
        from annotation.label_errors import probabilities_source_register
        from hits.models import ItemSelection
        from hits.planning import item_selection_register

        from .probabilities import dataset_probabilities
        from .selectors import issue_suggestions, review_batch_items

        item_selection_register(ItemSelection.CURATION, review_batch_items)
        suggestion_source_register(issue_suggestions)
        probabilities_source_register(dataset_probabilities)
