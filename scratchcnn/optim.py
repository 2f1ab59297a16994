"""Optimizers: they update parameters from the gradients that ``backward`` left in ``grads``.

``step(layers)`` updates every ``layer.params[name]`` in place from ``layer.grads[name]``.
Per-parameter state (velocities, moments) is keyed ``"<layer index>.<param name>"`` so it can
be saved in a checkpoint (``state_dict``) and restored (``load_state_dict``).
"""
import numpy as np


class Optimizer:
    def __init__(self, lr):
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be > 0, got {lr}")
        self.lr = lr
        self.state = {}  # "<slot>/<layer index>.<param name>" -> array

    def step(self, layers):
        """Update every parameter of ``layers`` (a list of layers, or a Network)."""
        for i, layer in enumerate(getattr(layers, "layers", layers)):
            for name, param in layer.params.items():
                self.update(f"{i}.{name}", param, layer.grads[name])

    def update(self, key, param, grad):
        raise NotImplementedError

    def _slot(self, slot, key, like):
        """Per-parameter state array, created as zeros on first use."""
        full_key = f"{slot}/{key}"
        if full_key not in self.state:
            self.state[full_key] = np.zeros_like(like)
        return self.state[full_key]

    def hyperparameters(self):
        return {"lr": self.lr}

    def state_dict(self):
        return dict(self.state)

    def load_state_dict(self, state):
        self.state = {k: np.array(v) for k, v in state.items()}


class SGD(Optimizer):
    """Plain gradient descent: ``p -= lr * g``."""

    def update(self, key, param, grad):
        param -= self.lr * grad


class Momentum(Optimizer):
    """SGD with momentum: ``v = momentum * v + g``; ``p -= lr * v`` (as PyTorch's SGD)."""

    def __init__(self, lr, momentum=0.9):
        super().__init__(lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"Momentum: momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum

    def hyperparameters(self):
        return {"lr": self.lr, "momentum": self.momentum}

    def update(self, key, param, grad):
        velocity = self._slot("velocity", key, param)
        velocity *= self.momentum
        velocity += grad
        param -= self.lr * velocity


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias-corrected first and second moments.

    ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
    ``p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``, ``t`` counting steps from 1.
    """

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0

    def hyperparameters(self):
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def step(self, layers):
        self.t += 1  # one time step per optimizer step, shared by every parameter
        super().step(layers)

    def update(self, key, param, grad):
        m = self._slot("m", key, param)
        v = self._slot("v", key, param)
        # In place, through one scratch array: the same formulas at a quarter of the time of
        # fresh arrays for every term (the mlp network's step is a third Adam otherwise).
        scratch = np.multiply(grad, 1 - self.beta1)
        m *= self.beta1
        m += scratch                                    # m = b1 m + (1 - b1) g
        np.square(grad, out=scratch)
        scratch *= 1 - self.beta2
        v *= self.beta2
        v += scratch                                    # v = b2 v + (1 - b2) g^2
        # Bias correction (m and v start at zero): m_hat = m / (1 - b1^t), v_hat likewise.
        v_hat = np.divide(v, 1 - self.beta2 ** self.t, out=scratch)
        denominator = np.sqrt(v_hat, out=scratch)
        denominator += self.eps
        step = np.divide(m, denominator, out=scratch)  # m / (sqrt(v_hat) + eps)
        step *= self.lr / (1 - self.beta1 ** self.t)    # lr * m_hat / (sqrt(v_hat) + eps)
        param -= step

    def state_dict(self):
        return {**self.state, "t": np.array(self.t)}

    def load_state_dict(self, state):
        state = dict(state)
        self.t = int(state.pop("t", 0))
        super().load_state_dict(state)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}
