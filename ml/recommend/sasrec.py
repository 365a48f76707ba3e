"""SASRec-family Transformer trained with full softmax cross-entropy (Klenitskiy & Vasilev, RecSys 2023).

Causal self-attention over the user's last ``max_len`` items with learned position embeddings; the output at every
position is scored against the whole catalogue through the (tied) item embedding table and trained with
cross-entropy over *all* items. Full cross-entropy instead of SASRec's original one-negative BCE is the single
change that moves SASRec from the bottom to the top of published comparisons, and at ~12k items it is cheap: one
``[positions x d] @ [d x items]`` product.

Items that come with attributes (brand, category) are represented by their own embedding plus the mean of their
attributes' embeddings, in the input and in the tied output table alike (``SASRecConfig.attributes``): a rarely
bought item borrows the evidence of its brand and category, and an item nobody has bought yet still gets a
meaningful score. Chosen on validation on two data sets (docs/benchmarks/recsys.md).

Efficiency choices, all of which keep the result identical in expectation:

* every sequence is fed once and the loss is taken at every position (all prefixes at once); padded positions are
  dropped *before* the catalogue product, so the expensive part costs only real positions;
* sequences are right-padded and positions count from the sequence start, so causal attention never sees padding
  (no key mask needed) and a prefix gets the same positions in training and at inference;
* batches group sequences of similar length (shuffled buckets), so attention over padding is small;
* evaluation and scoring are one batched forward pass, no Python loop per user.

Training is seeded (torch and numpy) and reproducible for a fixed thread count. Early stopping watches NDCG@10 on a
validation split and restores the best epoch's weights.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from ml.recommend.base import Interactions, Recommender, as_sequences
from ml.recommend.data import Sequences
from ml.recommend.metrics import evaluate

LOSS_CHUNK_LOGITS = 2**27
"""Catalogue logits (positions x items) a training step holds at once: 256 MiB in bfloat16. Beauty and the small
and medium stores stay below it; a 100k-item catalogue takes its batches' loss in chunks."""


@dataclass
class SASRecConfig:
    max_len: int = 50
    hidden: int = 64
    n_blocks: int = 2
    n_heads: int = 1
    ffn_mult: int = 1
    emb_dropout: float = 0.5
    dropout: float = 0.2
    lr: float = 5e-3
    weight_decay: float = 0.1
    lr_patience: int = 2
    """Epochs without validation gain after which the learning rate is multiplied by ``lr_decay`` (0: never)."""
    lr_decay: float = 0.3
    batch_size: int = 128
    max_epochs: int = 200
    patience: int = 5
    eval_every: int = 1
    seed: int = 0
    threads: int | None = None
    attributes: bool = True
    """Add to each item's embedding the mean of its attributes' embeddings (brand, category: whatever ``fit`` is
    given as ``item_attributes``), on the input and in the tied output table, so items that share attributes share
    evidence; without ``item_attributes`` the model is plain SASRec."""
    bf16: bool = True
    """Compute the catalogue logits and their cross-entropy in bfloat16 during training (scoring stays fp32)."""
    fused_loss: bool = True
    """The catalogue cross-entropy with its hand-written backward (:class:`_CatalogueCrossEntropy`); False takes
    autograd's ``F.cross_entropy`` under autocast, the same gradient in more passes (kept to measure the two in
    one run: ``bench.recsys_epochs``)."""
    time_budget: float | None = None
    """Seconds of training after which no new epoch is started, nor a new batch (an epoch cut short is still
    validated; the best epoch so far is kept). A run the budget stops depends on the machine's speed, so two runs on
    the same data can keep different epochs; None trains until early stopping or ``max_epochs``, the same on every
    run (``stopped_by_budget_`` says which happened)."""
    verbose: bool = False
    history: list[dict[str, float]] = field(default_factory=list, repr=False)


class _SASRecNet(nn.Module):
    def __init__(self, n_items: int, cfg: SASRecConfig, attributes: sp.csr_matrix | None = None):
        super().__init__()
        d = cfg.hidden
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.attr_emb: nn.EmbeddingBag | None = None
        if cfg.attributes and attributes is not None and attributes.nnz:
            # one bag of attribute codes per item (an empty bag adds zeros)
            self.attr_emb = nn.EmbeddingBag(attributes.shape[1], d, mode="mean")
            nn.init.normal_(self.attr_emb.weight, std=d**-0.5)
            self.register_buffer("attr_codes", torch.from_numpy(attributes.indices.astype(np.int64)))
            self.register_buffer("attr_offsets", torch.from_numpy(attributes.indptr[:-1].astype(np.int64)))
        self.pos_emb = nn.Embedding(cfg.max_len, d)
        self.emb_drop = nn.Dropout(cfg.emb_dropout)
        layer = nn.TransformerEncoderLayer(
            d,
            cfg.n_heads,
            dim_feedforward=d * cfg.ffn_mult,
            dropout=cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.n_blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.scale = math.sqrt(d / 2)
        nn.init.normal_(self.item_emb.weight, std=d**-0.5)
        nn.init.normal_(self.pos_emb.weight, std=d**-0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def item_table(self) -> torch.Tensor:
        """Item representations ``[n_items + 1, d]`` (row 0: padding), with the attribute means added."""
        weight = self.item_emb.weight
        # models pickled before attribute inputs existed have no attr_emb
        if getattr(self, "attr_emb", None) is None:
            return weight
        extra = self.attr_emb(self.attr_codes, self.attr_offsets)
        return torch.cat([weight[:1], weight[1:] + extra])

    def forward(self, seq: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states ``[B, L, d]`` for right-padded item sequences (item index + 1; 0 = padding)."""
        length = seq.size(1)
        table = self.item_table() if table is None else table
        # scaled to unit variance per coordinate, so that the item identity dominates the residual stream at
        # initialisation rather than the attention/FFN noise added to it (SASRec's original sqrt(d) scaling)
        x = (F.embedding(seq, table) + self.pos_emb.weight[:length][None]) * self.scale
        x = self.emb_drop(x)
        mask = torch.triu(torch.full((length, length), float("-inf")), diagonal=1)
        return self.norm(self.encoder(x, mask=mask, is_causal=True))

    def logits(self, hidden: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        table = self.item_table() if table is None else table
        return hidden @ table[1:].T

    def last_hidden(
        self, seq: torch.Tensor, lens: torch.Tensor, table: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Final hidden state ``[B, d]`` at position ``lens - 1`` of each row (inference; same as ``forward``).

        Scoring needs only the last position, so the last block attends from that position alone and runs its
        feed-forward on one vector per user instead of ``L``: about a third less work with two blocks.
        """
        length = seq.size(1)
        table = self.item_table() if table is None else table
        x = (F.embedding(seq, table) + self.pos_emb.weight[:length][None]) * self.scale
        x = self.emb_drop(x)
        layers = list(self.encoder.layers)
        if len(layers) > 1:
            mask = torch.triu(torch.full((length, length), float("-inf")), diagonal=1)
            for layer in layers[:-1]:
                x = layer(x, src_mask=mask, is_causal=True)
        last = layers[-1]
        rows = torch.arange(len(seq))
        h = last.norm1(x)
        query = h[rows, lens - 1][:, None]
        # causal attention from the last real position sees exactly the real items (right padding comes after)
        padding = torch.arange(length)[None, :] >= lens[:, None]
        attn = last.self_attn(query, h, h, key_padding_mask=padding, need_weights=False)[0][:, 0]
        y = x[rows, lens - 1] + last.dropout1(attn)
        y = y + last._ff_block(last.norm2(y))
        return self.norm(y)


class _CatalogueCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy of ``hidden @ weight.T`` over the whole catalogue, with a hand-written backward.

    The catalogue product and its softmax are most of a training step, and on a CPU the softmax is memory-bound:
    autograd's cross-entropy makes several full passes over the ``[positions x items]`` logits (log-softmax,
    its gradient, casts between bfloat16 and float32). Here the forward keeps only the probabilities, in
    ``dtype``, and the backward is ``softmax - one_hot`` multiplied into the two small ``[.. x d]`` gradients:
    the same gradient up to ``dtype``'s rounding, in fewer passes (docs/benchmarks/recsys.md, throughput).
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, dtype):  # type: ignore[override]
        h, w = hidden.to(dtype), weight.to(dtype)
        probs = torch.softmax(h @ w.T, dim=1)
        rows = torch.arange(len(targets))
        loss = -torch.log(probs[rows, targets].float().clamp_min(torch.finfo(torch.float32).tiny)).sum()
        ctx.save_for_backward(h, w, targets, probs)
        return loss

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        h, w, targets, probs = ctx.saved_tensors
        # softmax - one_hot, in place: this is the last use of probs
        probs[torch.arange(len(targets)), targets] -= 1.0
        grad_hidden = (probs @ w).float() * grad
        grad_weight = (h.T @ probs).T.float() * grad
        return grad_hidden, grad_weight, None, None


def _pad_right(seqs: Sequences, length: int, offset: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Each user's last ``length`` items, left-aligned in a ``[users, length]`` array (+``offset``, 0 = pad)."""
    lens = np.minimum(seqs.lengths, length)
    out = np.zeros((len(seqs), length), dtype=np.int64)
    rows = np.repeat(np.arange(len(seqs)), lens)
    cols = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
    src = np.repeat(seqs.indptr[1:] - lens, lens) + cols
    out[rows, cols] = seqs.items[src] + offset
    return out, lens


class SASRec(Recommender):
    """Causal Transformer next-item model; ``score`` returns log-probabilities over the catalogue."""

    name = "sasrec"
    output = "logprob"

    def __init__(self, config: SASRecConfig | None = None, **overrides: Any):
        self.config = dataclasses.replace(config or SASRecConfig(), **overrides)

    # ----------------------------------------------------------------- training
    def fit(
        self,
        interactions: Interactions,
        n_items: int | None = None,
        *,
        validation: tuple[Sequences, np.ndarray] | None = None,
        epochs: int | None = None,
        init_from: SASRec | None = None,
        lr_schedule: Sequence[float] | None = None,
        reserve_refit: bool = False,
        item_attributes: sp.csr_matrix | None = None,
        attribute_ids: Sequence[Any] | None = None,
    ) -> SASRec:
        """Train; with ``validation=(histories, targets)`` stop early on NDCG@10, else run ``epochs`` epochs.

        ``histories`` are the validation users' inputs (usually the training sequences themselves) and
        ``targets`` their held-out next items. Without either, ``max_epochs`` epochs are run.

        ``init_from`` warm-starts from an earlier fitted model: its attention/position weights are copied and
        item embeddings are carried over by raw item id (items new since then keep their fresh initialisation),
        so a daily retrain needs a few epochs instead of a full run, and ``epochs=0`` just re-indexes the old
        model onto the new catalogue.

        ``lr_schedule`` gives the learning rate of each epoch (the last value repeats): a refit without validation
        replays the schedule that early stopping found (including its plateau decays) instead of staying at the
        initial rate.

        ``reserve_refit`` keeps room in ``time_budget`` for a refit after early stopping: no epoch is started
        unless the time left after it still covers a refit to it (its number of epochs at the mean training
        seconds per epoch so far). See :func:`fit_with_refit`.

        ``item_attributes`` is a multi-hot ``[n_items, attributes]`` matrix aligned with the item indices
        (:func:`ml.recommend.coldstart.attribute_matrix`); used when ``config.attributes``. ``attribute_ids``
        names its columns, so that a later warm start carries the embeddings of the attributes both share.
        """
        self._reserve_refit = reserve_refit
        self._item_attributes = item_attributes
        self.attribute_ids_ = None if attribute_ids is None else np.asarray(attribute_ids, dtype=object)
        self._validation = validation
        self._epochs = epochs
        self._init_from = init_from
        self._lr_schedule = list(lr_schedule) if lr_schedule else None
        return super().fit(as_sequences(interactions, n_items))

    def _fit(self, seqs: Sequences) -> None:
        cfg = self.config
        self.stopped_by_budget_ = False
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        self.net_ = _SASRecNet(seqs.n_items, cfg, getattr(self, "_item_attributes", None))
        if getattr(self, "_init_from", None) is not None:
            self._warm_start(self._init_from, seqs)
        self.pop_logp_ = np.log(np.bincount(seqs.items, minlength=seqs.n_items) + 1.0).astype(np.float32)
        self.pop_logp_ -= np.log(np.exp(self.pop_logp_.astype(np.float64)).sum()).astype(np.float32)
        # inputs are items[:-1], targets items[1:], over each user's last max_len + 1 items
        window, lens = _pad_right(seqs, cfg.max_len + 1)
        keep = lens >= 2
        window, lens = window[keep], lens[keep]
        inputs = window.copy()
        inputs[np.arange(len(lens)), lens - 1] = 0  # the last item of each window is only a target
        inputs = inputs[:, :-1]
        targets = window[:, 1:] - 1  # -1 marks padding
        opt = torch.optim.AdamW(self.net_.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        max_epochs = self._epochs if self._epochs is not None else cfg.max_epochs
        best, best_epoch, best_state, bad = -1.0, 0, None, 0
        cfg.history = []
        start = time.perf_counter()
        schedule = getattr(self, "_lr_schedule", None)
        for epoch in range(1, max_epochs + 1):
            t0 = time.perf_counter()
            if schedule:
                for group in opt.param_groups:
                    group["lr"] = schedule[min(epoch, len(schedule)) - 1]
            self.net_.train()
            total, n_pos = 0.0, 0
            batches = _length_buckets(lens - 1, cfg.batch_size, rng)
            done, cut_short = 0, False
            for batch in batches:
                # on a large catalogue one epoch can outlast the whole budget: stop between batches too
                if cfg.time_budget is not None and done and time.perf_counter() - start > cfg.time_budget:
                    cut_short = True
                    break
                width = int(lens[batch].max()) - 1
                inp = torch.from_numpy(inputs[batch, :width])
                tgt = torch.from_numpy(targets[batch, :width])
                valid = tgt >= 0
                opt.zero_grad(set_to_none=True)
                table = self.net_.item_table()
                loss = self._backward_loss(self.net_(inp, table)[valid], tgt[valid], table[1:])
                opt.step()
                total += loss * int(valid.sum())
                n_pos += int(valid.sum())
                done += 1
            record = {
                "epoch": epoch,
                "loss": total / max(n_pos, 1),
                "lr": opt.param_groups[0]["lr"],
                "seconds": time.perf_counter() - t0,
                "batches": done,
                "batches_in_epoch": len(batches),
            }
            stop = self.stopped_by_budget_ = cut_short
            if self._validation is not None and epoch % cfg.eval_every == 0:
                hist, tgts = self._validation
                t1 = time.perf_counter()
                ndcg = evaluate(lambda b, h=hist: self._logits(h.subset(b)), hist, tgts, ks=(10,))["NDCG@10"]
                record["val_NDCG@10"] = ndcg
                record["eval_seconds"] = time.perf_counter() - t1
                if ndcg > best:
                    best, best_epoch, bad = ndcg, epoch, 0
                    best_state = copy.deepcopy(self.net_.state_dict())
                else:
                    bad += 1
                    stop = bad >= cfg.patience
                    if cfg.lr_patience and bad % cfg.lr_patience == 0:
                        # a plateau at a high learning rate is noise, not convergence: anneal and keep going
                        for group in opt.param_groups:
                            group["lr"] *= cfg.lr_decay
            cfg.history.append(record)
            if cfg.verbose:
                print(f"[sasrec] {record}", file=sys.stderr, flush=True)
            elapsed = time.perf_counter() - start
            # stop before an epoch that would overrun the budget (estimated from the mean epoch so far), counting
            # the refit to that epoch when one must follow
            budget = cfg.time_budget
            projected = elapsed * (1 + 1 / epoch)
            if getattr(self, "_reserve_refit", False):
                projected += (epoch + 1) * float(np.mean([h["seconds"] for h in cfg.history]))
            if not stop and epoch < max_epochs and budget is not None and projected > budget:
                stop = self.stopped_by_budget_ = True
            if stop:
                break
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        self.best_epoch_ = best_epoch if best_state is not None else len(cfg.history)
        self.best_val_ndcg_ = best if best_state is not None else None
        self.train_seconds_ = time.perf_counter() - start
        # drop references to the validation data and the previous model, so that a saved model stays small
        self._validation, self._init_from, self._lr_schedule = None, None, None
        self._item_attributes = None
        self.net_.eval()

    def _warm_start(self, old: SASRec, seqs: Sequences) -> None:
        if old.config.hidden != self.config.hidden or old.config.n_blocks != self.config.n_blocks:
            raise ValueError("warm start needs the same hidden size and number of blocks")
        # item rows move with the catalogue (copied by raw id below), attribute rows by attribute name
        state = {
            k: v
            for k, v in old.net_.state_dict().items()
            if k != "item_emb.weight" and not k.startswith("attr_")
        }
        if state["pos_emb.weight"].shape != self.net_.pos_emb.weight.shape:
            state.pop("pos_emb.weight")
        self.net_.load_state_dict(state, strict=False)
        where_old = pd.Index(old.item_ids_).get_indexer(seqs.item_ids)
        shared = np.flatnonzero(where_old >= 0)
        with torch.no_grad():
            old_emb = old.net_.item_emb.weight
            self.net_.item_emb.weight[torch.from_numpy(shared + 1)] = old_emb[
                torch.from_numpy(where_old[shared] + 1)
            ]
            old_names, new_names = getattr(old, "attribute_ids_", None), self.attribute_ids_
            both = self.net_.attr_emb is not None and getattr(old.net_, "attr_emb", None) is not None
            if both and old_names is not None and new_names is not None:
                where = pd.Index(old_names).get_indexer(new_names)
                kept = np.flatnonzero(where >= 0)
                self.net_.attr_emb.weight[torch.from_numpy(kept)] = old.net_.attr_emb.weight[
                    torch.from_numpy(where[kept])
                ]

    # ----------------------------------------------------------------- scoring
    @torch.no_grad()
    def _score(self, histories: Sequences, users: np.ndarray) -> np.ndarray:
        return torch.log_softmax(torch.from_numpy(self._logits(histories)), dim=-1).numpy()

    @torch.no_grad()
    def score_tensor(self, histories: Sequences) -> torch.Tensor:
        # logits rank exactly like log-probabilities, and skipping the softmax saves a pass over the catalogue
        return torch.from_numpy(self._logits(histories))

    def _backward_loss(self, hidden: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> float:
        """Back-propagate the mean cross-entropy of the catalogue logits after ``hidden`` (``[positions, d]``) and
        return it (``weight``: the output table ``[items, d]``). When the ``[positions x catalogue]`` logits would pass :data:`LOSS_CHUNK_LOGITS`, the loss is
        taken over chunks of positions whose gradients add up at ``hidden`` before one pass back through the
        blocks: the same gradient, with one chunk's probabilities in memory at a time."""
        dtype = torch.bfloat16 if self.config.bf16 else torch.float32
        n_items = weight.shape[0]
        chunk = max(1, LOSS_CHUNK_LOGITS // n_items)

        def summed_loss(h: torch.Tensor, t: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            if self.config.fused_loss:
                return _CatalogueCrossEntropy.apply(h, w, t, dtype)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.config.bf16):
                return F.cross_entropy(h @ w.T, t, reduction="sum")

        if len(targets) <= chunk:
            loss = summed_loss(hidden, targets, weight) / len(targets)
            loss.backward()
            return float(loss.detach())
        # both inputs of the chunks' losses are leaves whose gradients add up over the chunks, then flow back
        # through the blocks and the item table (attributes included) in one pass
        leaf, weight_leaf = hidden.detach().requires_grad_(), weight.detach().requires_grad_()
        total = 0.0
        for start in range(0, len(targets), chunk):
            part = slice(start, start + chunk)
            loss = summed_loss(leaf[part], targets[part], weight_leaf)
            (loss / len(targets)).backward()
            total += float(loss.detach())
        torch.autograd.backward([hidden, weight], [leaf.grad, weight_leaf.grad])
        return total / len(targets)

    @torch.no_grad()
    def _logits(self, histories: Sequences, chunk: int = 512) -> np.ndarray:
        """Catalogue logits after each history, computed in chunks of similar length (little padding)."""
        self.net_.eval()
        padded, lens = _pad_right(histories, self.config.max_len)
        out = np.empty((len(histories), histories.n_items), dtype=np.float32)
        out[lens == 0] = self.pop_logp_
        rows = np.flatnonzero(lens > 0)
        rows = rows[np.argsort(lens[rows], kind="stable")]
        table = self.net_.item_table()
        for start in range(0, len(rows), chunk):
            r = rows[start : start + chunk]
            width = int(lens[r].max())
            last = self.net_.last_hidden(
                torch.from_numpy(padded[r, :width]), torch.from_numpy(lens[r]), table
            )
            out[r] = self.net_.logits(last, table).numpy()
        return out

    def params(self) -> dict[str, Any]:
        p = {k: v for k, v in asdict(self.config).items() if k not in ("history", "verbose")}
        p["best_epoch"] = getattr(self, "best_epoch_", None)
        attributes = getattr(getattr(self, "net_", None), "attr_emb", None)
        p["item_attributes_used"] = 0 if attributes is None else attributes.num_embeddings
        return p


def _length_buckets(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of sequences of similar length, in random order.

    Sorting by length with a random tie-break and cutting into chunks keeps padding small; shuffling the chunks
    (and the ties) keeps the gradient order random from epoch to epoch.
    """
    order = np.lexsort((rng.random(len(lengths)), lengths))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


RERUN_CAVEAT = (
    "a re-run on a faster or busier machine can keep another epoch (no budget gives identical re-runs)"
)
"""Why a stop by ``time_budget`` is worth saying to ops: the budget is the one training input that is not data."""


def epochs_run(model: SASRec) -> str:
    """``N epochs``, and how far the last one got when the time budget cut it between batches."""
    history = model.config.history
    last = history[-1] if history else {}
    partial = (
        f" (the last cut short after {last['batches']} of its {last['batches_in_epoch']} batches)"
        if last.get("batches", 0) < last.get("batches_in_epoch", 0)
        else ""
    )
    return f"{len(history)} epochs{partial}"


def budget_note(model: SASRec) -> str:
    """The note for a training that the time budget, not early stopping, ended."""
    return f"stopped by the time budget after {epochs_run(model)}, not by early stopping: {RERUN_CAVEAT}"


@dataclass
class RefitResult:
    """What :func:`fit_with_refit` trained: the model to use, the early-stopping run, and whether a refit ran."""

    model: SASRec
    early_stopped: SASRec
    refit: bool
    note: str
    seconds_early_stopping: float
    seconds_refit: float


def fit_with_refit(
    config: SASRecConfig,
    train: Sequences,
    validation: tuple[Sequences, np.ndarray],
    full: Sequences,
    refit: str = "auto",
    item_attributes: sp.csr_matrix | None = None,
    attribute_ids: Sequence[Any] | None = None,
) -> RefitResult:
    """Early stopping on ``validation`` with the model trained on ``train``, then a refit from scratch on ``full``
    for the chosen number of epochs with the same learning rates, epoch by epoch (plateau decays included).

    ``train`` holds out what ``validation`` predicts (every user's last item, in the benchmark and the daily
    platform alike) and ``full`` is everything; the refit is what lets the served model learn the most recent
    items. ``config.time_budget`` bounds both together: with ``refit="auto"`` early stopping keeps room for the
    refit (and stops early when the budget cannot hold more, which ``note`` says), ``"always"`` splits the budget
    in halves, ``"never"`` gives it all to early stopping and serves the early-stopped model.
    ``item_attributes`` (aligned with the item indices of ``train`` and ``full``) and ``attribute_ids`` go to both
    fits.
    """
    if refit not in ("auto", "always", "never"):
        raise ValueError(f"refit must be auto, always or never, not {refit!r}")
    budget = config.time_budget
    early_cfg = dataclasses.replace(config, history=[])
    if refit == "always" and budget is not None:
        early_cfg.time_budget = budget / 2
    early = SASRec(early_cfg).fit(
        train,
        validation=validation,
        reserve_refit=refit == "auto",
        item_attributes=item_attributes,
        attribute_ids=attribute_ids,
    )
    seconds_early = early.train_seconds_
    history = early.config.history
    best = early.best_epoch_
    train_seconds = float(np.mean([h["seconds"] for h in history])) if history else 0.0
    remaining = None if budget is None else budget - seconds_early
    needed = best * train_seconds
    if early.stopped_by_budget_:
        ended = f"early stopping ended by the time budget after {epochs_run(early)} (best {best})" + (
            ", keeping room for the refit" if refit == "auto" else ""
        )
    elif len(history) >= early_cfg.max_epochs:
        ended = f"early stopping reached the cap of {early_cfg.max_epochs} epochs (best {best})"
    else:
        ended = f"early stopping ended by patience after {len(history)} epochs (best {best})"
    if refit == "never" or (refit == "auto" and remaining is not None and needed > remaining):
        why = "never" if refit == "never" else f"auto; {remaining:.0f}s left, ~{needed:.0f}s needed"
        note = (
            f"{ended}; no refit ({why}): the early-stopped model, which never trained on the validation items, "
            "is used"
        )
        return RefitResult(early, early, False, _with_rerun_caveat(note, early), seconds_early, 0.0)
    refit_cfg = dataclasses.replace(
        config, history=[], time_budget=None if remaining is None else max(remaining, 1.0)
    )
    schedule = [h["lr"] for h in history[:best]]
    model = SASRec(refit_cfg).fit(
        full, epochs=best, lr_schedule=schedule, item_attributes=item_attributes, attribute_ids=attribute_ids
    )
    model.best_epoch_ = best
    model.best_val_ndcg_ = early.best_val_ndcg_
    done = len(model.config.history)
    note = f"{ended}; refit on all the data for {done} of {best} epochs" + (
        " (cut short by the budget)" if model.stopped_by_budget_ else ""
    )
    return RefitResult(
        model, early, True, _with_rerun_caveat(note, early), seconds_early, model.train_seconds_
    )


def _with_rerun_caveat(note: str, early: SASRec) -> str:
    return f"{note}; {RERUN_CAVEAT}" if early.stopped_by_budget_ else note
