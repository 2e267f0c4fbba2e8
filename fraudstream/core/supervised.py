"""The online supervised model: River, trained from labels as they arrive, for P(fraud).

Fraud is rare (well under 1 % of card traffic), so a plain learner mostly learns "legit".
The default is River's logistic regression behind a standard scaler with the positive class
weighted (``loss=Log(weight_pos=...)``): it costs microseconds per event, learns from each
label once, and its probability ranks well. Until it has seen ``min_frauds`` frauds and
``min_legit`` legit transactions it is not :attr:`ready`, and fraudstream behaves as the
unsupervised detector it is without labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from river import compose, forest, imblearn, linear_model, optim, preprocessing

ClassifierKind = Literal["logistic", "logistic_undersampled", "forest"]


@dataclass(frozen=True, slots=True)
class ClassifierParams:
    """Which River model, and when its probability may be used."""

    kind: ClassifierKind = "logistic"
    #: Weight of a fraud in the logistic loss: moves the boundary into the rare class.
    weight_pos: float = 10.0
    learning_rate: float = 0.01
    min_frauds: int = 50
    min_legit: int = 1000
    seed: int = 42


def make_model(params: ClassifierParams) -> Any:
    """The River estimator for ``params.kind`` (all have learn_one / predict_proba_one)."""
    if params.kind == "forest":
        return forest.ARFClassifier(n_models=10, seed=params.seed)
    weight_pos = params.weight_pos if params.kind == "logistic" else 1.0
    logistic = compose.Pipeline(
        preprocessing.StandardScaler(),
        linear_model.LogisticRegression(
            optimizer=optim.SGD(params.learning_rate),
            loss=optim.losses.Log(weight_pos=weight_pos),
            l2=1e-5,
        ),
    )
    if params.kind == "logistic_undersampled":
        return imblearn.RandomUnderSampler(
            logistic,  # type: ignore[arg-type]  # a Pipeline ending in a classifier is one
            desired_dist={False: 0.9, True: 0.1},
            seed=params.seed,
        )
    return logistic


class FraudClassifier:
    """P(fraud) for a feature vector, learned online from labeled (or matured) transactions.

    >>> model = FraudClassifier(ClassifierParams(min_frauds=1, min_legit=1))
    >>> for i in range(200):
    ...     model.learn_one({"risk": 1.0 if i % 10 == 0 else 0.0}, fraud=i % 10 == 0)
    >>> model.ready, model.predict_proba_one({"risk": 1.0}) > model.predict_proba_one({"risk": 0.0})
    (True, True)
    """

    def __init__(self, params: ClassifierParams) -> None:
        self.params = params
        self.model = make_model(params)
        self.frauds = 0
        self.legit = 0

    @property
    def ready(self) -> bool:
        """True once it has learned from enough frauds and legit transactions."""
        return self.frauds >= self.params.min_frauds and self.legit >= self.params.min_legit

    def learn_one(self, x: dict[str, float], fraud: bool) -> None:
        """Learn one resolved transaction."""
        self.model.learn_one(x, bool(fraud))
        if fraud:
            self.frauds += 1
        else:
            self.legit += 1

    def predict_proba_one(self, x: dict[str, float]) -> float:
        """P(fraud) in [0, 1] (0 for a model that has learned nothing yet)."""
        probability = self.model.predict_proba_one(x).get(True, 0.0)
        return 0.0 if math.isnan(probability) else float(probability)


class LabelRate:
    """The share of fraud among resolved transactions, decayed over ``window`` of event time.

    >>> rate = LabelRate(window=86400.0)
    >>> for i in range(100):
    ...     rate.learn(fraud=i < 2, event_time=float(i))
    >>> round(rate.value, 3)
    0.02
    """

    def __init__(self, window: float = 30 * 86400.0, prior: float = 0.01) -> None:
        self.window = window
        self.prior = prior
        self.frauds = 0.0
        self.total = 0.0
        self.time = 0.0

    @property
    def value(self) -> float:
        """The rate, pulled towards ``prior`` while there is little evidence."""
        return (self.frauds + self.prior) / (self.total + 1.0)

    def learn(self, fraud: bool, event_time: float, weight: float = 1.0) -> None:
        """Count one resolved transaction (``weight`` -1 undoes one)."""
        if event_time >= self.time:
            decay = math.exp(-(event_time - self.time) / self.window)
            self.frauds *= decay
            self.total *= decay
            self.time = event_time
            age = 1.0
        else:
            age = math.exp(-(self.time - event_time) / self.window)
        self.total += weight * age
        if fraud:
            self.frauds += weight * age
