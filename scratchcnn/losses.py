"""Cross-entropy loss over softmax probabilities, and the label checks it needs."""
import numpy as np


def check_labels(labels, n, num_classes):
    """``labels`` as an int array of shape ``(n,)`` with values in ``[0, num_classes)``."""
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels: expected shape ({n},) to match the batch of {n}, "
                         f"got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if not (np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels))):
            raise ValueError(f"labels: expected integer class indices, got dtype {labels.dtype}")
        labels = labels.astype(np.int64)
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels: expected values in [0, {num_classes - 1}], got values from "
                         f"{labels.min()} to {labels.max()}")
    return labels


def cross_entropy(probs, labels):
    """Mean cross-entropy of ``(N, K)`` probabilities against ``(N,)`` integer labels.

    Returns ``(loss, d_probs)``: the mean of ``-log(probs[i, labels[i]])`` and its gradient
    w.r.t. ``probs`` ``(N, K)`` (zero except ``-1 / (N * p)`` at each label), the tutorial's
    ``d_L_d_out`` averaged over the batch.
    """
    probs = np.asarray(probs)
    if probs.ndim != 2:
        raise ValueError(f"cross_entropy: expected probabilities of shape (N, K), got shape {probs.shape}")
    n, k = probs.shape
    labels = check_labels(labels, n, k)
    rows = np.arange(n)
    # Clip so that a probability that underflowed to 0 gives a large, finite loss.
    p_true = np.maximum(probs[rows, labels], np.finfo(probs.dtype).tiny)
    loss = float(-np.log(p_true).mean())
    d_probs = np.zeros_like(probs)
    d_probs[rows, labels] = -1.0 / (n * p_true)
    return loss, d_probs


def softmax_cross_entropy(logits, labels):
    """Fused, stable softmax + mean cross-entropy from ``(N, K)`` logits.

    Returns ``(loss, d_logits)`` with ``d_logits = (softmax(logits) - one_hot) / N``; the same
    numbers as ``cross_entropy`` after a softmax, without dividing by small probabilities.
    """
    n, k = logits.shape
    labels = check_labels(labels, n, k)
    rows = np.arange(n)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=1, keepdims=True)
    log_probs_true = shifted[rows, labels] - np.log(sum_exp[:, 0])
    d_logits = exp / sum_exp
    d_logits[rows, labels] -= 1
    d_logits /= n
    return float(-log_probs_true.mean()), d_logits
