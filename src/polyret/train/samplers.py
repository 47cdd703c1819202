"""Batching policies for multilingual contrastive training (PROTOCOLS §1.2-1.3).

A **triplet** is (item, query language Lq, passage language Lp). The samplers here build whole batches of
triplets under one policy and hand them to ``SentenceTransformerTrainer`` through its ``batch_sampler``
extension point (:class:`SamplerFactory`):

- :class:`MonoBatchSampler` (X-X-mono, from LAReQA): every batch is one language L, every triplet Lq = Lp = L.
  Use it for a monolingual baseline or when cross-lingual pairs are unavailable.
- :class:`XYBatchSampler` (X-Y): every triplet has Lq ≠ Lp, the ordered pair drawn per triplet from the item's
  languages. Use it to train cross-lingual alignment only.
- :class:`HybridBatchSampler` (2408.10536): each whole batch is mono with probability ``alpha`` and X-Y
  otherwise. The paper's method; use it by default.
- :class:`FixedBatchSampler`: replays precomputed batches (fixed, seeded validation batches).

Draws per batch, in this order (§1.2): the batch kind; for mono a language (uniform by default, or
``proportional`` to its item count, or ``temperature``-smoothed counts) then a data set that has it (p ∝ its item
count in that language); for X-Y a data set with ≥ 2 languages (p ∝ its multilingual item count); then items
without replacement from a per-epoch shuffle of that pool (reshuffled with seed + epoch; a pool that runs out is
reshuffled for another pass). A batch never mixes data sets or kinds.

Every batch satisfies: no two triplets share an item id, and no text appears twice after prefixing (queries,
passages and hard negatives together). A conflicting item is deferred to a later batch and the next one is drawn:
batches never shrink.

**DDP** (§1.3): with W ranks, each rank builds the same *global* batch of B = W·b triplets (the random draws of
step s in epoch e come from a generator seeded with (seed, e, s); item pools are reshuffled from (seed, e, pool)),
and rank r yields only its slice ``[r·b, (r+1)·b)``. The trainer must therefore not re-shard the sampler's
batches (see :class:`polyret.train.contrastive.PolyretTrainer`). With gathered negatives this equals single-GPU
training on B.

**Resuming**: a batch depends only on (seed, epoch, step) and the batches before it in the epoch, so replaying
the first k batches of the epoch (what the Hugging Face trainer does on ``resume_from_checkpoint``) restores the
sampler state exactly.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler

from polyret.data.pairs import TrainingSet
from polyret.distributed import distributed_layout
from polyret.errors import ConfigError, DataError

log = logging.getLogger(__name__)

Policy = Literal["mono", "xy", "hybrid"]
LanguageSampling = Literal["uniform", "proportional", "temperature"]
PairSampling = Literal["uniform", "weighted"]
MONO, XY = "mono", "xy"
#: the dataset columns the trainer sees: row numbers into the training and the validation :class:`TripletIndex`; the
#: collator reads the rows back, and :class:`SamplerFactory` tells the two datasets apart by the column
TRAIN_COLUMN, VALIDATION_COLUMN = "row", "val_row"


class TripletIndex:
    """Every training text, interned after prefixing, and a compact encoding of all (item, Lq, Lp) triplets.

    Items are numbered globally (``g``) across data sets; item g has k_g languages (its *slots*, in the order of
    ``languages``) and owns rows ``row_start[g] + a·k_g + b`` for slot pair (a, b), a = query slot, b = passage
    slot. Rows are what samplers yield and what :meth:`texts` turns back into prefixed strings. Two texts are
    "the same" exactly when their interned ids are equal, so duplicate checks are exact and identical on every rank.

    ``hard_negatives`` = m: only language entries with at least m negatives are kept, and each triplet carries the
    first m negatives of its passage language.
    """

    def __init__(
        self,
        sets: Sequence[TrainingSet],
        languages: Sequence[str],
        query_prefix: str = "",
        passage_prefix: str = "",
        hard_negatives: int = 0,
    ) -> None:
        if not sets:
            raise ConfigError("no training data sets")
        names = [s.name for s in sets]
        if len(set(names)) != len(names):
            raise ConfigError(f"training data set names repeat: {names}; give each a distinct name")
        self.languages = tuple(languages)
        self.dataset_names = tuple(names)
        self.query_prefix, self.passage_prefix, self.hard_negatives = query_prefix, passage_prefix, hard_negatives
        lang_ix = {lang: i for i, lang in enumerate(self.languages)}
        text_ids: dict[str, int] = {}
        self.text_table: list[str] = []

        def intern(text: str) -> int:
            found = text_ids.get(text)
            if found is None:
                found = text_ids[text] = len(self.text_table)
                self.text_table.append(text)
            return found

        item_dataset: list[int] = []
        self.item_ids: list[str] = []
        counts: list[int] = []
        slot_lang: list[int] = []
        slot_q: list[int] = []
        slot_p: list[int] = []
        slot_neg: list[tuple[int, ...]] = []
        for d, training_set in enumerate(sets):
            for item in training_set.items:
                langs = [
                    lang
                    for lang in sorted(item.langs, key=lambda code: lang_ix.get(code, -1))
                    if lang in lang_ix and len(item.langs[lang].negatives) >= hard_negatives
                ]
                if not langs:
                    continue
                item_dataset.append(d)
                self.item_ids.append(item.id)
                counts.append(len(langs))
                for lang in langs:
                    entry = item.langs[lang]
                    slot_lang.append(lang_ix[lang])
                    slot_q.append(intern(query_prefix + entry.query))
                    slot_p.append(intern(passage_prefix + entry.passage))
                    slot_neg.append(tuple(intern(passage_prefix + n) for n in entry.negatives[:hard_negatives]))
        if not counts:
            raise DataError(
                f"no training item has any of the languages {list(self.languages)}"
                + (f" with {hard_negatives} hard negatives" if hard_negatives else "")
            )
        self.item_dataset = np.asarray(item_dataset, dtype=np.int32)
        self.item_langs = np.asarray(counts, dtype=np.int64)
        self.slot_start = np.concatenate([[0], np.cumsum(self.item_langs)]).astype(np.int64)
        self.row_start = np.concatenate([[0], np.cumsum(self.item_langs**2)]).astype(np.int64)
        self.slot_lang = np.asarray(slot_lang, dtype=np.int16)
        self.slot_query = np.asarray(slot_q, dtype=np.int64)
        self.slot_passage = np.asarray(slot_p, dtype=np.int64)
        self.slot_negatives = np.asarray(slot_neg, dtype=np.int64).reshape(len(slot_q), hard_negatives)

    @property
    def num_items(self) -> int:
        return len(self.item_langs)

    @property
    def num_rows(self) -> int:
        return int(self.row_start[-1])

    def item_languages(self, g: int) -> np.ndarray:
        """Language indexes of item g's slots, in slot order."""
        return self.slot_lang[int(self.slot_start[g]) : int(self.slot_start[g + 1])]

    def row(self, g: int, a: int, b: int) -> int:
        """The row of item g with query slot a and passage slot b (slot = position among the item's languages)."""
        return int(self.row_start[g] + a * self.item_langs[g] + b)

    def triplet_text_ids(self, g: int, a: int, b: int) -> tuple[int, ...]:
        s = int(self.slot_start[g])
        return (int(self.slot_query[s + a]), int(self.slot_passage[s + b]), *self.slot_negatives[s + b].tolist())

    def decode(self, rows: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(global item, query slot, passage slot) arrays for rows (absolute slot numbers)."""
        rows = np.asarray(rows, dtype=np.int64)
        g = np.searchsorted(self.row_start, rows, side="right") - 1
        k = self.item_langs[g]
        local = rows - self.row_start[g]
        base = self.slot_start[g]
        return g, base + local // k, base + local % k

    def texts(self, rows: Sequence[int]) -> tuple[list[str], list[str], list[list[str]]]:
        """(queries, positives, negatives per column) for rows, prefixes included."""
        _, sq, sp = self.decode(rows)
        table = self.text_table
        queries = [table[i] for i in self.slot_query[sq].tolist()]
        positives = [table[i] for i in self.slot_passage[sp].tolist()]
        negatives = [[table[i] for i in column] for column in self.slot_negatives[sp].T.tolist()]
        return queries, positives, negatives

    def describe(self, rows: Sequence[int]) -> dict[str, Any]:
        """What a batch of rows is: kind (mono/xy), data set(s), language pairs, item ids (for logs and tests)."""
        g, sq, sp = self.decode(rows)
        lq, lp = self.slot_lang[sq], self.slot_lang[sp]
        mono = bool(np.all(lq == lp))
        xy = bool(np.all(lq != lp))
        kind = MONO if mono else XY if xy else "mixed"
        datasets = sorted({self.dataset_names[d] for d in self.item_dataset[g].tolist()})
        langs = sorted({self.languages[i] for i in np.concatenate([lq, lp]).tolist()})
        names = self.languages
        return {
            "kind": kind,
            "dataset": datasets[0] if len(datasets) == 1 else datasets,
            "lang": langs[0] if mono and len(langs) == 1 else None,
            "langs": langs,
            "items": [self.item_ids[i] for i in g.tolist()],
            "pairs": [f"{names[a]}-{names[b]}" for a, b in zip(lq.tolist(), lp.tolist(), strict=True)],
        }


class _ItemPool:
    """Items of one (data set, kind[, language]): a seeded per-epoch shuffle consumed in order, plus deferrals."""

    def __init__(self, items: np.ndarray, key: tuple[int, ...], seed: int) -> None:
        self.items, self.key, self.seed = items, key, seed
        self.start_epoch(0)

    def start_epoch(self, epoch: int) -> None:
        self.epoch, self.passes, self.pos = epoch, 0, 0
        self.order = self._shuffle()
        self.deferred: deque[int] = deque()

    def _shuffle(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch, self.passes, *self.key])
        return self.items[rng.permutation(len(self.items))]

    def take(self, count: int, accept: Callable[[int], tuple[int, tuple[int, ...]] | None], what: str) -> list[int]:
        """``count`` accepted rows; items ``accept`` refuses (returns None for) are deferred to later batches."""
        queue, self.deferred = self.deferred, deque()
        chosen: list[int] = []
        skipped: list[int] = []
        limit = 3 * len(self.items) + count
        tried = 0
        while len(chosen) < count:
            if queue:
                g = queue.popleft()
            else:
                if self.pos == len(self.order):
                    self.passes += 1
                    self.order, self.pos = self._shuffle(), 0
                g = int(self.order[self.pos])
                self.pos += 1
            tried += 1
            if tried > limit:
                raise DataError(
                    f"{what}: cannot fill a batch of {count} triplets with distinct items and texts "
                    f"({len(self.items)} items, {len(chosen)} fit); lower batch_size or deduplicate "
                    "the data"
                )
            row = accept(g)
            if row is None:
                skipped.append(g)
            else:
                chosen.append(row)
        self.deferred = deque([*queue, *skipped])
        return chosen


@dataclass(frozen=True)
class BatchPlan:
    """One global batch: its kind, language (mono), data set and rows (length B = W·b)."""

    step: int
    kind: str
    dataset: str
    lang: str | None
    rows: list[int]


class PolicyBatchSampler(DefaultBatchSampler):
    """Base of the policy samplers: builds the global batch of step s of an epoch and yields this rank's slice.

    Args:
        dataset: the trainer's dataset (a table of ``index.num_rows`` rows); only its length is used.
        index: the :class:`TripletIndex` the rows refer to.
        batch_size: triplets per rank per step (b); the global batch is ``batch_size * world_size``.
        seed: base seed; batches depend on (seed, epoch, step).
        world_size, rank: DDP layout; default: :func:`distributed_layout` (process group, else torchrun env).
        language_sampling: mono language law: ``uniform`` (paper), ``proportional`` to item counts, or
            ``temperature`` (counts ** (1 / language_temperature)).
        xy_pairs: X-Y ordered pair law per triplet: ``uniform`` over the item's pairs, or ``weighted`` by the
            product of the two languages' sampling weights.
        steps_per_epoch: batches per epoch; default: the number of items divided by the global batch (≥ 1).
    """

    policy: Policy = "hybrid"

    def __init__(
        self,
        dataset: Any,
        index: TripletIndex,
        batch_size: int,
        *,
        seed: int = 0,
        alpha: float = 0.5,
        world_size: int | None = None,
        rank: int | None = None,
        language_sampling: LanguageSampling = "uniform",
        language_temperature: float = 1.0,
        xy_pairs: PairSampling = "uniform",
        steps_per_epoch: int | None = None,
        drop_last: bool = False,
        valid_label_columns: list[str] | None = None,
        generator: Any = None,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )
        if world_size is None or rank is None:
            world_size, rank = distributed_layout()
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"alpha must lie in [0, 1], got {alpha}")
        self.index, self.alpha = index, alpha
        self.world_size, self.rank = world_size, rank
        self.global_batch_size = batch_size * world_size
        self.xy_pairs = xy_pairs
        self._build_pools(language_sampling, language_temperature)
        self.steps_per_epoch = steps_per_epoch or max(1, index.num_items // self.global_batch_size)

    # ----------------------------------------------------------------------------------------------- set-up
    def _uses(self, kind: str) -> bool:
        if self.policy == "hybrid":
            return self.alpha > 0.0 if kind == MONO else self.alpha < 1.0
        return self.policy == kind

    def _build_pools(self, language_sampling: str, language_temperature: float) -> None:
        index, B = self.index, self.global_batch_size
        n_langs, n_sets = len(index.languages), len(index.dataset_names)
        slot_item = np.repeat(np.arange(index.num_items), index.item_langs)
        self.mono_pools: dict[tuple[int, int], _ItemPool] = {}
        self.xy_pools: dict[int, _ItemPool] = {}
        skipped: list[str] = []
        for d in range(n_sets):
            in_set = index.item_dataset[slot_item] == d
            if self._uses(MONO):
                for lang in range(n_langs):
                    items = slot_item[in_set & (index.slot_lang == lang)]
                    if len(items) >= B:
                        self.mono_pools[(d, lang)] = _ItemPool(items, (d, lang, 0), self.seed)
                    elif len(items):
                        skipped.append(f"{index.dataset_names[d]}/{index.languages[lang]} ({len(items)} items)")
            if self._uses(XY):
                items = np.flatnonzero((index.item_dataset == d) & (index.item_langs >= 2))
                if len(items) >= B:
                    self.xy_pools[d] = _ItemPool(items, (d, n_langs, 1), self.seed)
                elif len(items):
                    skipped.append(f"{index.dataset_names[d]}/X-Y ({len(items)} items)")
        if skipped:
            log.warning("too few items for a global batch of %d, not sampled: %s", B, ", ".join(skipped))
        if self._uses(MONO):
            have = {lang for _, lang in self.mono_pools}
            missing = [code for i, code in enumerate(index.languages) if i not in have]
            if missing:
                raise DataError(
                    f"mono batches: no data set has {B} items (one global batch) in {missing}; "
                    "lower batch_size or drop these languages"
                )
        if self._uses(XY) and not self.xy_pools:
            raise DataError(
                f"X-Y batches: no data set has {B} items in at least two of the languages "
                f"{list(index.languages)}; lower batch_size"
            )
        counts = np.bincount(index.slot_lang, minlength=n_langs).astype(np.float64)
        if language_sampling == "uniform":
            weights = np.ones(n_langs)
        elif language_sampling == "proportional":
            weights = counts
        elif language_sampling == "temperature":
            if language_temperature <= 0:
                raise ConfigError("language_temperature must be positive")
            weights = counts ** (1.0 / language_temperature)
        else:
            raise ConfigError(f"unknown language_sampling {language_sampling!r}")
        #: the mono language law; X-Y ``weighted`` pairs use it too
        self.lang_probs = weights / weights.sum()

    # ----------------------------------------------------------------------------------------------- draws
    def _draw_kind(self, rng: np.random.Generator) -> str:
        if self.policy == "mono":
            return MONO
        if self.policy == "xy":
            return XY
        return MONO if rng.random() < self.alpha else XY

    def _start_epoch(self, epoch: int) -> None:
        for pool in [*self.mono_pools.values(), *self.xy_pools.values()]:
            pool.start_epoch(epoch)

    def global_batches(self, epoch: int | None = None, steps: int | None = None) -> Iterator[BatchPlan]:
        """The global batches of an epoch (default: the current one), in order."""
        epoch = self.epoch if epoch is None else epoch
        self._start_epoch(epoch)
        for step in range(self.steps_per_epoch if steps is None else steps):
            yield self._global_batch(epoch, step)

    def _global_batch(self, epoch: int, step: int) -> BatchPlan:
        index, B = self.index, self.global_batch_size
        rng = np.random.default_rng([self.seed, epoch, step, 0x5A3])
        kind = self._draw_kind(rng)
        seen_items: set[int] = set()
        seen_texts: set[int] = set()

        def admit(g: int, a: int, b: int) -> int | None:
            if g in seen_items:
                return None
            ids = index.triplet_text_ids(g, a, b)
            if len(set(ids)) < len(ids) or not seen_texts.isdisjoint(ids):
                return None
            seen_items.add(g)
            seen_texts.update(ids)
            return index.row(g, a, b)

        if kind == MONO:
            lang = int(rng.choice(len(index.languages), p=self.lang_probs))
            choices = [(d, pool) for (d, lg), pool in self.mono_pools.items() if lg == lang]
            sizes = np.array([len(pool.items) for _, pool in choices], dtype=np.float64)
            d, pool = choices[int(rng.choice(len(choices), p=sizes / sizes.sum()))]

            def accept(g: int) -> int | None:
                a = int(np.flatnonzero(index.item_languages(g) == lang)[0])
                return admit(g, a, a)

            rows = pool.take(B, accept, f"{index.dataset_names[d]}/{index.languages[lang]} mono")
            return BatchPlan(step, MONO, index.dataset_names[d], index.languages[lang], rows)

        choices_xy = list(self.xy_pools.items())
        sizes = np.array([len(pool.items) for _, pool in choices_xy], dtype=np.float64)
        d, pool = choices_xy[int(rng.choice(len(choices_xy), p=sizes / sizes.sum()))]

        def accept_xy(g: int) -> int | None:
            k = int(index.item_langs[g])
            if self.xy_pairs == "weighted":
                w = self.lang_probs[index.item_languages(g)]
                pair_w = np.outer(w, w)
                np.fill_diagonal(pair_w, 0.0)
                flat = pair_w.ravel() / pair_w.sum()
                choice = int(rng.choice(k * k, p=flat))
                a, b = divmod(choice, k)
            else:
                choice = int(rng.integers(k * (k - 1)))
                a, b = divmod(choice, k - 1)
                b += b >= a
            return admit(g, a, b)

        rows = pool.take(B, accept_xy, f"{index.dataset_names[d]} X-Y")
        return BatchPlan(step, XY, index.dataset_names[d], None, rows)

    # ----------------------------------------------------------------------------------------------- sampler API
    def __iter__(self) -> Iterator[list[int]]:
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        for plan in self.global_batches(self.epoch):
            yield plan.rows[lo:hi]

    def __len__(self) -> int:
        return self.steps_per_epoch


class MonoBatchSampler(PolicyBatchSampler):
    """X-X-mono: each batch draws one language and pairs every query with its passage in that language."""

    policy: Policy = "mono"


class XYBatchSampler(PolicyBatchSampler):
    """X-Y: every triplet pairs a query with its passage in another language (ordered pair drawn per triplet)."""

    policy: Policy = "xy"


class HybridBatchSampler(PolicyBatchSampler):
    """Hybrid (2408.10536): each whole batch is X-X-mono with probability ``alpha``, else X-Y."""

    policy: Policy = "hybrid"


SAMPLERS: dict[str, type[PolicyBatchSampler]] = {
    "mono": MonoBatchSampler,
    "xy": XYBatchSampler,
    "hybrid": HybridBatchSampler,
}


class FixedBatchSampler(DefaultBatchSampler):
    """Replays fixed global batches (e.g. seeded validation batches), yielding this rank's slice of each."""

    def __init__(
        self,
        dataset: Any,
        batches: Sequence[Sequence[int]],
        batch_size: int,
        *,
        world_size: int | None = None,
        rank: int | None = None,
    ) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=False)
        if world_size is None or rank is None:
            world_size, rank = distributed_layout()
        self.batches = [list(b) for b in batches]
        self.world_size, self.rank = world_size, rank

    def __iter__(self) -> Iterator[list[int]]:
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        for batch in self.batches:
            yield batch[lo:hi]

    def __len__(self) -> int:
        return len(self.batches)


class SamplerFactory:
    """The ``batch_sampler`` callable for ``SentenceTransformerTrainingArguments``.

    The trainer calls it with ``(dataset, batch_size, drop_last, valid_label_columns, generator, seed)`` for the
    training set and for the validation set. The training dataset gets the policy sampler; a dataset whose
    column is :data:`VALIDATION_COLUMN` gets a :class:`FixedBatchSampler` over ``validation_batches``. Pickles to a
    short description (the trainer saves its arguments with every checkpoint).
    """

    def __init__(
        self, index: TripletIndex, policy: Policy, *, validation_batches: Sequence[Sequence[int]] = (), **options: Any
    ) -> None:
        self.index, self.policy, self.options = index, policy, options
        self.validation_batches = validation_batches
        self.last_sampler: PolicyBatchSampler | None = None

    def __call__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool = False,
        valid_label_columns: list[str] | None = None,
        generator: Any = None,
        seed: int = 0,
    ) -> DefaultBatchSampler:
        if VALIDATION_COLUMN in (getattr(dataset, "column_names", None) or ()):
            return FixedBatchSampler(dataset, self.validation_batches, batch_size)
        options = {"seed": seed, **self.options}
        sampler = SAMPLERS[self.policy](
            dataset,
            self.index,
            batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            **options,
        )
        self.last_sampler = sampler
        return sampler

    def __reduce__(self) -> tuple[Any, ...]:
        return (str, (f"polyret SamplerFactory(policy={self.policy}, options={self.options})",))
