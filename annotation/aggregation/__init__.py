"""Turning crowd votes into labels: plain functions over numpy arrays, no Django.

Shape letters: N items, M workers, K classes, V votes, C candidates shown per complementary vote.
Every method that produces labels returns an :class:`Aggregate`; ``-1`` in a label array means
"unresolved" (no votes, a tie left unresolved, or no consensus).

Conventions shared by all methods:

* Items with no votes get label ``-1`` and uniform probabilities ``1/K`` (or the supplied prior,
  where a method takes one): there is no human evidence about them.
* The EM methods (:func:`dawid_skene`, :func:`one_coin`, :func:`mace`) start from the majority-vote
  shares and stop when the mean per-vote log-likelihood changes by less than ``tol``.

Modules: :mod:`.types` (vote table, results, answer codes, checks), :mod:`.rules` (majority,
k-of-n consensus, strict, verify and select), :mod:`.em` (Dawid–Skene, one-coin, MACE),
:mod:`.gold` (gold-weighted vote), :mod:`.auto` (the default class-vote method),
:mod:`.agreement` (Fleiss' kappa, Krippendorff's alpha), :mod:`.complementary`, :mod:`.quality`
(worker reports) and :mod:`.methods` (class-vote methods by name). Import from this package,
not the modules.
"""

from .agreement import Agreement, agreement
from .complementary import (
    GOLD_VOTES_PER_CLASS,
    complementary_log_likelihood,
    complementary_posterior,
    complementary_transition_from_gold,
    elimination,
    estimate_complementary_transition,
)
from .em import dawid_skene, mace, one_coin
from .gold import gold_weighted_majority
from .methods import CATEGORICAL_METHODS, DEFAULT_METHOD, aggregate_by_name
from .quality import worker_quality
from .rules import (
    consensus,
    consensus_method_name,
    majority_vote,
    select_share,
    strict_vote,
    verify_summary,
)
from .types import (
    ANSWER_CORRECT,
    ANSWER_UNSURE,
    ANSWER_WRONG,
    REVIEW_ANSWERS,
    REVIEW_BOTH,
    REVIEW_GIVEN,
    REVIEW_NEITHER,
    REVIEW_SUGGESTED,
    STATUS_AMBIGUOUS,
    STATUS_CLEAN,
    STATUS_NAMES,
    STATUS_NOISY,
    STATUS_NONE,
    VERIFY_ANSWERS,
    Aggregate,
    BoolArray,
    ClassPrior,
    ConfusionPrior,
    DurationsPer,
    FloatArray,
    IntArray,
    SelectSummary,
    Tie,
    VerifySummary,
    VoteTable,
    WorkerQuality,
)

__all__ = [
    "ANSWER_CORRECT",
    "ANSWER_UNSURE",
    "ANSWER_WRONG",
    "CATEGORICAL_METHODS",
    "DEFAULT_METHOD",
    "GOLD_VOTES_PER_CLASS",
    "REVIEW_ANSWERS",
    "REVIEW_BOTH",
    "REVIEW_GIVEN",
    "REVIEW_NEITHER",
    "REVIEW_SUGGESTED",
    "STATUS_AMBIGUOUS",
    "STATUS_CLEAN",
    "STATUS_NAMES",
    "STATUS_NOISY",
    "STATUS_NONE",
    "VERIFY_ANSWERS",
    "Aggregate",
    "Agreement",
    "BoolArray",
    "ClassPrior",
    "ConfusionPrior",
    "DurationsPer",
    "FloatArray",
    "IntArray",
    "SelectSummary",
    "Tie",
    "VerifySummary",
    "VoteTable",
    "WorkerQuality",
    "aggregate_by_name",
    "agreement",
    "complementary_log_likelihood",
    "complementary_posterior",
    "complementary_transition_from_gold",
    "consensus",
    "consensus_method_name",
    "dawid_skene",
    "elimination",
    "estimate_complementary_transition",
    "gold_weighted_majority",
    "mace",
    "majority_vote",
    "one_coin",
    "select_share",
    "strict_vote",
    "verify_summary",
    "worker_quality",
]
