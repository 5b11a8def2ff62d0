"""TF-IDF vectors of texts and their k-means clusters, in numpy alone.

They follow scikit-learn's TfidfVectorizer (lowercase, a token pattern, stop words, max_df, max_features,
sublinear tf, smoothed idf, l2 rows) and KMeans (greedy k-means++ seeding, Lloyd iterations, the best of
`n_init` runs by inertia) step by step, with the same random draws, so they give its clusters; importing
scikit-learn alone costs a second and a half, more than a report or a merge takes without it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# scikit-learn's ENGLISH_STOP_WORDS (BSD-3-Clause), the Glasgow Information Retrieval Group's stop list.
ENGLISH_STOP_WORDS = frozenset("""
    a about above across after afterwards again against all almost alone along already also although always am among
    amongst amoungst amount an and another any anyhow anyone anything anyway anywhere are around as at back be
    became because become becomes becoming been before beforehand behind being below beside besides between beyond
    bill both bottom but by call can cannot cant co con could couldnt cry de describe detail do done down due during
    each eg eight either eleven else elsewhere empty enough etc even ever every everyone everything everywhere
    except few fifteen fifty fill find fire first five for former formerly forty found four from front full further
    get give go had has hasnt have he hence her here hereafter hereby herein hereupon hers herself him himself his
    how however hundred i ie if in inc indeed interest into is it its itself keep last latter latterly least less
    ltd made many may me meanwhile might mill mine more moreover most mostly move much must my myself name namely
    neither never nevertheless next nine no nobody none noone nor not nothing now nowhere of off often on once one
    only onto or other others otherwise our ours ourselves out over own part per perhaps please put rather re same
    see seem seemed seeming seems serious several she should show side since sincere six sixty so some somehow
    someone something sometime sometimes somewhere still such system take ten than that the their them themselves
    then thence there thereafter thereby therefore therein thereupon these they thick thin third this those though
    three through throughout thru thus to together too top toward towards twelve twenty two un under until up upon
    us very via was we well were what whatever when whence whenever where whereafter whereas whereby wherein
    whereupon wherever whether which while whither who whoever whole whom whose why will with within without would
    yet you your yours yourself yourselves
""".split())


@dataclass
class Rows:
    """A sparse matrix in CSR form: row i holds values data[indptr[i]:indptr[i + 1]] in columns indices[...]."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    columns: int

    @property
    def n(self) -> int:
        return len(self.indptr) - 1

    def row_ids(self) -> np.ndarray:
        return np.repeat(np.arange(self.n), np.diff(self.indptr))

    def take(self, rows: np.ndarray) -> Rows:
        lengths = np.diff(self.indptr)[rows]
        starts = np.repeat(self.indptr[rows] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        picked = starts + np.arange(lengths.sum())
        return Rows(self.data[picked], self.indices[picked], np.concatenate([[0], np.cumsum(lengths)]), self.columns)

    def dense(self, rows: np.ndarray) -> np.ndarray:
        """[len(rows), columns]: the rows as dense arrays."""
        part = self.take(rows)
        out = np.zeros((len(rows), self.columns))
        out[part.row_ids(), part.indices] = part.data
        return out

    def dots(self, dense: np.ndarray) -> np.ndarray:
        """[n, len(dense)]: each row's dot product with each dense row (summed in the row's entry order)."""
        ids = self.row_ids()
        return np.stack([np.bincount(ids, self.data * d[self.indices], minlength=self.n) for d in dense], axis=1)

    def by_column(self) -> Rows:
        """The transpose (rows become columns), each new row in the order of the old rows."""
        order = np.argsort(self.indices, kind="stable")
        return Rows(self.data[order], self.row_ids()[order],
                    np.concatenate([[0], np.cumsum(np.bincount(self.indices, minlength=self.columns))]), self.n)

    def dots_with_row(self, rows: Rows, i: int) -> np.ndarray:
        """On a transpose (by_column) of `rows`: row i's dot product with each row, summed in row i's entry order."""
        span = slice(rows.indptr[i], rows.indptr[i + 1])
        terms, values = rows.indices[span], rows.data[span]
        lengths = np.diff(self.indptr)[terms]
        at = np.repeat(self.indptr[terms] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        at += np.arange(lengths.sum())
        return np.bincount(self.indices[at], np.repeat(values, lengths) * self.data[at], minlength=self.columns)

    def squared_norms(self) -> np.ndarray:
        return np.bincount(self.row_ids(), self.data * self.data, minlength=self.n)

    def sq_distances(self, centers: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Each row's squared distance to its own center, centers[labels]."""
        ids, own = self.row_ids(), centers[labels]
        at = own[ids, self.indices]
        found = np.bincount(ids, (self.data - at) ** 2 - at * at, minlength=self.n) + np.einsum("ij,ij->i", own, own)
        return np.maximum(found, 0)


def tfidf(texts: Sequence[str], stop_words: frozenset[str], token_pattern: str, max_df: float,
          max_features: int) -> tuple[Rows, list[str]] | None:
    """TF-IDF rows of `texts` and the term of each column (alphabetical), or None when no term is left.

    Terms are the lowercased tokens that are no stop word, found in at most `max_df` of the texts, the
    `max_features` most frequent of them; values are (1 + log count) times the smoothed idf, each row scaled to
    unit length. A row's entries are in the order the texts first use their terms.
    """
    tokens = re.compile(token_pattern).findall
    vocabulary: dict[str, int] = {}  # term -> order of first use
    owners: list[int] = []  # per entry: its text, its term (by first use) and the term's count in the text
    terms: list[int] = []
    counts: list[int] = []
    for r, text in enumerate(texts):
        counted: dict[int, int] = {}
        for token in tokens(text.lower()):
            if token not in stop_words:
                term = vocabulary.setdefault(token, len(vocabulary))
                counted[term] = counted.get(term, 0) + 1
        owners += [r] * len(counted)
        terms += counted
        counts += counted.values()
    if not vocabulary:
        return None
    row, first = np.array(owners, dtype=np.int64), np.array(terms, dtype=np.int64)
    count = np.array(counts, dtype=np.float64)
    order = np.lexsort((first, row))
    row, first, count = row[order], first[order], count[order]
    names = sorted(vocabulary)
    column = np.empty(len(names), dtype=np.int64)  # order of first use -> alphabetical column
    column[[vocabulary[t] for t in names]] = np.arange(len(names))
    col = column[first]
    keep = np.bincount(col, minlength=len(names)) <= max_df * len(texts)
    if keep.sum() > max_features:  # the most used terms (the same sort as scikit-learn's, for the same ties)
        totals = np.bincount(col, count, minlength=len(names))
        most = np.zeros(len(names), dtype=bool)
        most[np.flatnonzero(keep)[(-totals[keep]).argsort()[:max_features]]] = True
        keep = most
    if not keep.any():
        return None
    kept = keep[col]
    row, col, count = row[kept], (np.cumsum(keep) - 1)[col[kept]], count[kept]
    columns = int(keep.sum())
    idf = np.full(columns, len(texts) + 1, dtype=np.float64) / (np.bincount(col, minlength=columns) + 1.0)
    np.log(idf, out=idf)
    idf += 1.0
    data = np.log(count)
    data += 1.0
    data *= idf[col]
    matrix = Rows(data, col, np.concatenate([[0], np.cumsum(np.bincount(row, minlength=len(texts)))]), columns)
    norms = np.sqrt(matrix.squared_norms())[row]
    np.divide(data, norms, out=data, where=norms > 0)
    return matrix, [names[i] for i in np.flatnonzero(keep)]


def _assign(rows: Rows, centers: np.ndarray) -> np.ndarray:
    """Each row's nearest center (the first of equals), by |c|^2 - 2 x.c as scikit-learn compares them."""
    return np.argmin(np.einsum("ij,ij->i", centers, centers) - 2 * rows.dots(centers), axis=1).astype(np.int32)


def _seeds(rows: Rows, k: int, norms: np.ndarray, random: np.random.RandomState) -> np.ndarray:
    """Greedy k-means++: each next center the best of 2 + log(k) rows drawn by squared distance. The distances are
    summed in scikit-learn's order (its seeds, even where two candidates are as good but for rounding)."""
    ones, by_column = np.ones(rows.n), rows.by_column()
    chosen = [random.choice(rows.n, p=ones / ones.sum())]
    first = rows.dense(np.array(chosen))
    closest = np.maximum(-2 * rows.dots(first).T + np.einsum("ij,ij->i", first, first)[:, None] + norms[None, :], 0)
    potential = closest @ ones
    for _ in range(1, k):
        draws = random.uniform(size=2 + int(np.log(k))) * potential
        candidates = np.clip(np.searchsorted(np.cumsum(ones * closest), draws), None, closest.size - 1)
        found = -2 * np.stack([by_column.dots_with_row(rows, c) for c in candidates])
        found += norms[candidates][:, None]
        found += norms[None, :]
        to_candidates = np.minimum(closest, np.maximum(found, 0))
        pots = to_candidates @ ones.reshape(-1, 1)
        best = np.argmin(pots)
        potential, closest = pots[best], to_candidates[best]
        chosen.append(candidates[best])
    return rows.dense(np.array(chosen))


def _lloyd(rows: Rows, centers: np.ndarray, tol: float, max_iter: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Lloyd iterations until no label changes or the centers move less than `tol` (squared, summed): the labels,
    the centers and the inertia."""
    ids, k = rows.row_ids(), len(centers)
    labels_old, converged = np.full(rows.n, -1, dtype=np.int32), False
    for _ in range(max_iter):
        labels = _assign(rows, centers)
        sums = np.bincount(labels[ids] * rows.columns + rows.indices, rows.data,
                           minlength=k * rows.columns).reshape(k, rows.columns)
        weights = np.bincount(labels, minlength=k).astype(np.float64)
        _relocate_empty(rows, centers, labels, sums, weights)
        new = sums * (1.0 / np.where(weights > 0, weights, 1))[:, None]
        new[weights == 0] = new[np.argmax(weights)]
        shift = (np.sqrt(((new - centers) ** 2).sum(axis=1)) ** 2).sum()
        centers = new
        if np.array_equal(labels, labels_old):
            converged = True
            break
        if shift <= tol:
            break
        labels_old = labels
    if not converged:
        labels = _assign(rows, centers)
    return labels, centers, float((rows.sq_distances(centers, labels)).sum())


def _relocate_empty(rows: Rows, centers: np.ndarray, labels: np.ndarray, sums: np.ndarray,
                    weights: np.ndarray) -> None:
    """Each empty cluster takes a row furthest from its center, out of that row's cluster."""
    empty = np.flatnonzero(weights == 0)
    if not empty.size:
        return
    distances = rows.sq_distances(centers, labels)
    if distances.max() == 0:
        return
    for cluster, row in zip(empty, np.argpartition(distances, -empty.size)[:-empty.size - 1:-1], strict=True):
        span = slice(rows.indptr[row], rows.indptr[row + 1])
        sums[labels[row], rows.indices[span]] -= rows.data[span]
        sums[cluster, rows.indices[span]] = rows.data[span]
        weights[cluster] = 1
        weights[labels[row]] -= 1


def _tolerance(rows: Rows, tol: float) -> float:
    """`tol` times the mean variance of the columns."""
    mean = np.bincount(rows.indices, rows.data, minlength=rows.columns) / rows.n
    squares = np.bincount(rows.indices, (rows.data - mean[rows.indices]) ** 2, minlength=rows.columns)
    absent = rows.n - np.bincount(rows.indices, minlength=rows.columns)
    return float(np.mean((squares + absent * mean**2) / rows.n) * tol)


def _same_clustering(a: np.ndarray, b: np.ndarray, k: int) -> bool:
    """Whether two labellings are the same up to the names of the clusters."""
    mapping = np.full(k, -1)
    for x, y in zip(a, b, strict=True):
        if mapping[x] == -1:
            mapping[x] = y
        elif mapping[x] != y:
            return False
    return True


def kmeans(rows: Rows, k: int, seed: int, n_init: int = 4, max_iter: int = 300, tol: float = 1e-4) -> np.ndarray:
    """[k, columns] centers: the best (lowest inertia) of `n_init` seeded k-means runs on `rows`."""
    random = np.random.RandomState(seed)
    norms, threshold = rows.squared_norms(), _tolerance(rows, tol)
    best = _lloyd(rows, _seeds(rows, k, norms, random), threshold, max_iter)
    for _ in range(n_init - 1):
        labels, centers, inertia = _lloyd(rows, _seeds(rows, k, norms, random), threshold, max_iter)
        if inertia < best[2] and not _same_clustering(labels, best[0], k):
            best = labels, centers, inertia
    return best[1]


def nearest(rows: Rows, centers: np.ndarray) -> np.ndarray:
    """Each row's cluster: the index of its nearest center."""
    return _assign(rows, centers)
