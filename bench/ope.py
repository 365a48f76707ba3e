"""Off-policy estimators on the Open Bandit Dataset: Thompson Sampling's click rate from the random policy's logs.

    python -m bench.ope --data data/open_bandit --out bench/results/ope_open_bandit.json

The protocol (docs/benchmarks/ope.md, after the dataset paper's): the target policy's action probabilities
from its Beta prior by Monte Carlo; 30 bootstrap resamples of the behaviour log; reward models fitted with
3-fold cross-fitting; relative error of each estimator against the target policy's logged click rate. Campaigns
``men`` and ``women`` choose the configuration put forward, ``all`` (the published one) is the test.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.special import gammaln
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, make_scorer
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold

from ml.feedback.ope import LoggedRounds, dm, dr, dr_shrunk, ips, sndr, snips

CAMPAIGNS = ("men", "women", "all")
VALIDATION = ("men", "women")
TEST = "all"
POSITIONS = 3
SHRINKAGE_GRID = (10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, np.inf)
CV_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
# a cross-validation split without a click cannot fit a classifier: its score is NaN and the grid uses the others
warnings.filterwarnings("ignore", category=FitFailedWarning)
warnings.filterwarnings(
    "ignore", message="One or more of the test scores are non-finite", category=UserWarning
)
PUBLISHED_ALL = {
    "dm": 0.157,
    "ips": 0.311,
    "snips": 0.312,
    "dr": 0.292,
    "sndr": 0.302,
    "switch_dr": 0.258,
    "dr_os": 0.160,
}
PUBLISHED_SOURCE = "st-tech/zr-obp examples/obd/README.md (obp 0.5.x, logistic regression, 30 bootstrap runs)"


@dataclass(frozen=True)
class Logs:
    """One campaign's log of one policy, prepared as the paper's pipeline prepares it."""

    action: np.ndarray
    position: np.ndarray
    """0-based."""
    reward: np.ndarray
    pscore: np.ndarray
    context: np.ndarray
    """One-hot user features, first level dropped."""
    action_context: np.ndarray
    """Per item: the hashed item features label-encoded, then item_feature_0."""

    @property
    def n_items(self) -> int:
        return len(self.action_context)


def load(data: Path, policy: str, campaign: str) -> Logs:
    folder = data / policy / campaign
    log = pd.read_csv(folder / f"{campaign}.csv.gz", index_col=0).sort_values("timestamp", kind="stable")
    items = pd.read_csv(folder / "item_context.csv.gz", index_col=0).sort_values("item_id")
    users = log.loc[:, log.columns.str.contains("user_feature")]
    hashed = items.drop(columns=["item_id", "item_feature_0"]).apply(lambda c: pd.factorize(c, sort=True)[0])
    return Logs(
        action=log["item_id"].to_numpy(),
        position=pd.factorize(log["position"], sort=True)[0],
        reward=log["click"].to_numpy(dtype=float),
        pscore=log["propensity_score"].to_numpy(dtype=float),
        context=pd.get_dummies(users, drop_first=True).to_numpy(dtype=float),
        action_context=np.c_[hashed.to_numpy(dtype=float), items["item_feature_0"].to_numpy(dtype=float)],
    )


def thompson_action_probabilities(
    alpha: np.ndarray, beta: np.ndarray, draws: int, seed: int, chunk: int = 10_000
) -> np.ndarray:
    """``P[item, position]`` of Bernoulli Thompson Sampling that draws every item's Beta and shows the top
    ``POSITIONS``, by ``draws`` Monte Carlo draws."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((len(alpha), POSITIONS))
    done = 0
    while done < draws:
        size = min(chunk, draws - done)
        theta = rng.beta(alpha, beta, size=(size, len(alpha)))
        top = np.argsort(-theta, axis=1)[:, :POSITIONS]
        for k in range(POSITIONS):
            counts[:, k] += np.bincount(top[:, k], minlength=len(alpha))
        done += size
    return counts / draws


def _features(logs: Logs, rows: np.ndarray, actions: np.ndarray) -> np.ndarray:
    return np.c_[logs.context[rows], logs.action_context[actions]]


class LogisticPerPosition:
    """One logistic regression per position on user and item features (the paper's reward model); with
    ``cv`` the regularisation is chosen by cross-validated log loss on the training rounds."""

    def __init__(self, C: float = 100.0, cv: bool = False):
        self.C, self.cv = C, cv

    def fit(self, logs: Logs, rows: np.ndarray) -> LogisticPerPosition:
        self.models = []
        for k in range(POSITIONS):
            at = rows[logs.position[rows] == k]
            X, y = _features(logs, at, logs.action[at]), logs.reward[at]
            if len(np.unique(y)) < 2:  # no click at this position in these rounds: nothing to regress
                self.models.append(_Constant(float(y.mean()) if len(y) else 0.0))
            elif self.cv:
                search = GridSearchCV(
                    LogisticRegression(max_iter=10_000),
                    {"C": list(CV_GRID)},
                    # a validation fold without a click is common here: name both labels
                    scoring=make_scorer(
                        log_loss, greater_is_better=False, response_method="predict_proba", labels=[0, 1]
                    ),
                    cv=StratifiedKFold(3, shuffle=True, random_state=12345),
                )
                self.models.append(search.fit(X, y).best_estimator_)
            else:
                self.models.append(
                    LogisticRegression(C=self.C, max_iter=10_000, random_state=12345).fit(X, y)
                )
        return self

    def predict_all(self, logs: Logs, rows: np.ndarray) -> np.ndarray:
        """Predicted click probability of every item at each row's own position: ``(len(rows), n_items)``."""
        out = np.empty((len(rows), logs.n_items))
        for k in range(POSITIONS):
            at = np.flatnonzero(logs.position[rows] == k)
            for a in range(logs.n_items):
                X = _features(logs, rows[at], np.full(len(at), a))
                out[at, a] = self.models[k].predict_proba(X)[:, 1]
        return out


class _Constant:
    def __init__(self, rate: float):
        self.rate = rate

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([np.full(len(X), 1 - self.rate), np.full(len(X), self.rate)])


class ItemPositionEmpiricalBayes:
    """Click rate = the position's rate x a per-item multiplier ``theta``, ``theta ~ Gamma(kappa, kappa)``:
    posterior mean ``(clicks + kappa) / (expected + kappa)``, ``kappa`` maximising the negative binomial
    marginal likelihood of the items' clicks."""

    KAPPAS = np.logspace(-1, 4, 51)

    def fit(self, logs: Logs, rows: np.ndarray) -> ItemPositionEmpiricalBayes:
        pos, act, r = logs.position[rows], logs.action[rows], logs.reward[rows]
        shown = np.bincount(pos, minlength=POSITIONS)
        self.position_rate = np.bincount(pos, weights=r, minlength=POSITIONS) / np.maximum(shown, 1)
        clicks = np.bincount(act, weights=r, minlength=logs.n_items)
        expected = np.bincount(act, weights=self.position_rate[pos], minlength=logs.n_items)
        self.kappa = float(
            self.KAPPAS[np.argmax([_negative_binomial_loglik(clicks, expected, k) for k in self.KAPPAS])]
        )
        self.multiplier = (clicks + self.kappa) / (expected + self.kappa)
        return self

    def predict_all(self, logs: Logs, rows: np.ndarray) -> np.ndarray:
        return self.position_rate[logs.position[rows]][:, None] * self.multiplier[None, :]


def _negative_binomial_loglik(clicks: np.ndarray, expected: np.ndarray, kappa: float) -> float:
    """log P(clicks) with clicks ~ Poisson(expected x theta), theta ~ Gamma(kappa, rate kappa), up to a constant."""
    return float(
        np.sum(
            gammaln(clicks + kappa)
            - gammaln(kappa)
            + kappa * np.log(kappa / (kappa + expected))
            + clicks * np.log(expected / (kappa + expected) + 1e-300)
        )
    )


REWARD_MODELS = {
    "logistic_obp": lambda: LogisticPerPosition(C=100.0),
    "logistic_cv": lambda: LogisticPerPosition(cv=True),
    "item_position_eb": ItemPositionEmpiricalBayes,
}


def cross_fitted(model_name: str, logs: Logs, n_folds: int = 3, seed: int = 12345) -> np.ndarray:
    """Each round's predictions for every item from a model fitted on the other folds."""
    out = np.empty((len(logs.reward), logs.n_items))
    everything = np.arange(len(logs.reward))
    for train, held in KFold(n_folds, shuffle=True, random_state=seed).split(everything):
        out[held] = REWARD_MODELS[model_name]().fit(logs, train).predict_all(logs, held)
    return out


def bootstrap_index(n: int, run: int) -> np.ndarray:
    """The rounds of bootstrap run ``run``: the same draws as the paper's pipeline (``RandomState(run).choice``),
    so that our resamples are its resamples."""
    return np.random.RandomState(run).choice(np.arange(n), size=n, replace=True)


def resample(logs: Logs, index: np.ndarray) -> Logs:
    return Logs(
        logs.action[index],
        logs.position[index],
        logs.reward[index],
        logs.pscore[index],
        logs.context[index],
        logs.action_context,
    )


def run_estimates(logs: Logs, target: np.ndarray, model_name: str) -> dict[str, float]:
    """Every estimator's value of the target policy (``target[item, position]``) on one (resampled) log."""
    q = cross_fitted(model_name, logs)
    rows = np.arange(len(logs.reward))
    pi_at_position = target[:, logs.position].T  # (rounds, items)
    rounds = LoggedRounds(
        reward=logs.reward,
        logging_propensity=logs.pscore,
        target_propensity=target[logs.action, logs.position],
        predicted_reward=q[rows, logs.action],
        target_predicted_reward=(pi_at_position * q).sum(axis=1),
    )
    values = {
        "ips": ips(rounds),
        "snips": snips(rounds),
        "dm": dm(rounds),
        "dr": dr(rounds),
        "sndr": sndr(rounds),
    }
    values |= {f"dr_os_{lam:g}": dr_shrunk(rounds, lam) for lam in SHRINKAGE_GRID}
    return values


def summarise(errors: np.ndarray, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    means = rng.choice(errors, size=(2000, len(errors)), replace=True).mean(axis=1)
    return {
        "mean": round(float(errors.mean()), 4),
        "std": round(float(errors.std(ddof=1)), 4),
        "ci95": [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)],
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.ope", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="data/open_bandit", help="folder with random/, bts/ and prior_bts.yaml")
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--runs", type=int, default=30, help="bootstrap resamples of the behaviour log")
    ap.add_argument(
        "--draws", type=int, default=100_000, help="Monte Carlo draws for BTS's action probabilities"
    )
    ap.add_argument("--campaigns", nargs="+", default=list(CAMPAIGNS), choices=CAMPAIGNS)
    ap.add_argument("--models", nargs="+", default=list(REWARD_MODELS), choices=list(REWARD_MODELS))
    args = ap.parse_args(argv)

    data = Path(args.data)
    prior = yaml.safe_load((data / "prior_bts.yaml").read_text())
    started = time.time()
    results: dict[str, dict] = {}
    for campaign in args.campaigns:
        behaviour = load(data, "random", campaign)
        truth = float(load(data, "bts", campaign).reward.mean())
        target = thompson_action_probabilities(
            np.asarray(prior[campaign]["alpha"], float),
            np.asarray(prior[campaign]["beta"], float),
            args.draws,
            seed=12345,
        )
        per_model: dict[str, dict] = {}
        for model_name in args.models:
            estimates: dict[str, list[float]] = {}
            for b in range(args.runs):
                index = bootstrap_index(len(behaviour.reward), b)
                for name, value in run_estimates(resample(behaviour, index), target, model_name).items():
                    estimates.setdefault(name, []).append(value)
            per_model[model_name] = {
                name: {**summarise(np.abs(np.array(v) - truth) / truth), "mean_estimate": float(np.mean(v))}
                for name, v in estimates.items()
            }
            best = min(per_model[model_name], key=lambda n: per_model[model_name][n]["mean"])
            print(
                f"[{time.time() - started:6.0f}s] {campaign:5s} {model_name:17s} truth {truth:.4f}  "
                f"dm {per_model[model_name]['dm']['mean']:.3f}  dr {per_model[model_name]['dr']['mean']:.3f}  "
                f"ips {per_model[model_name]['ips']['mean']:.3f}  best {best} "
                f"{per_model[model_name][best]['mean']:.3f}",
                flush=True,
            )
        results[campaign] = {
            "truth_ctr": truth,
            "behaviour_ctr": float(behaviour.reward.mean()),
            "behaviour_clicks": int(behaviour.reward.sum()),
            "rounds": len(behaviour.reward),
            "estimators": per_model,
        }

    chosen = choose_on_validation(results)
    out = {
        "command": "python -m bench.ope " + " ".join(argv if argv is not None else []),
        "machine": f"{platform.node()} {platform.machine()} {platform.processor() or ''}".strip(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
        "runs": args.runs,
        "draws": args.draws,
        "chosen_on_validation": chosen,
        "published_all": PUBLISHED_ALL,
        "published_source": PUBLISHED_SOURCE,
        "campaigns": results,
    }
    if chosen and TEST in results:
        model, estimator = chosen["model"], chosen["estimator"]
        out["test"] = {
            "model": model,
            "estimator": estimator,
            **results[TEST]["estimators"][model][estimator],
        }
        print(
            f"test ({TEST}): {model} / {estimator}: mean relative error {out['test']['mean']:.3f} "
            f"{out['test']['ci95']} (published best: DM {PUBLISHED_ALL['dm']})"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    return out


def choose_on_validation(results: dict[str, dict]) -> dict | None:
    """The (reward model, estimator) with the lowest mean relative error averaged over the validation
    campaigns; ``None`` when they were not run."""
    if not all(c in results for c in VALIDATION):
        return None
    scores = {}
    for model, estimates in results[VALIDATION[0]]["estimators"].items():
        for name in estimates:
            scores[(model, name)] = float(
                np.mean([results[c]["estimators"][model][name]["mean"] for c in VALIDATION])
            )
    model, name = min(scores, key=scores.get)
    return {
        "model": model,
        "estimator": name,
        "validation_mean_relative_error": round(scores[(model, name)], 4),
    }


if __name__ == "__main__":
    main()
