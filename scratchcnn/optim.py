"""Optimizers: they update parameters from the gradients that ``backward`` left in ``grads``.

``step(layers)`` updates every ``layer.params[name]`` in place from ``layer.grads[name]``.
An optimizer belongs to one set of parameter arrays: ``bind(layers)``, or the first ``step``,
ties it to the arrays of ``layers``, and every later ``step`` checks that it is given those
same arrays. So velocities and moments can never be applied to another network's parameters:
another list is refused with an error instead. Per-parameter state is named
``"<slot>/<layer index>.<param name>"`` so it can be saved in a checkpoint (``state_dict``) and
restored (``load_state_dict``, before or after binding).
"""
import numpy as np


def named_parameters(layers):
    """``[("<layer index>.<param name>", layer, param name), ...]`` for every parameter of
    ``layers`` (a list of layers, or a Network)."""
    return [(f"{i}.{name}", layer, name)
            for i, layer in enumerate(getattr(layers, "layers", layers)) for name in layer.params]


class Optimizer:
    def __init__(self, lr):
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be > 0, got {lr}")
        self.lr = lr
        self.parameters = None  # once bound: "<layer index>.<param name>" -> the parameter array
        self.state = {}  # "<slot>/<layer index>.<param name>" -> array

    def bind(self, layers):
        """Tie this optimizer to the parameter arrays of ``layers`` (a list of layers, or a
        Network); the first ``step`` does it too. Returns ``self``."""
        self._bound_parameters(layers)
        return self

    def step(self, layers):
        """Update every parameter of ``layers``: the ones this optimizer is bound to."""
        for key, layer, name in self._bound_parameters(layers):
            self.update(key, layer.params[name], layer.grads[name])

    def _bound_parameters(self, layers):
        """``named_parameters(layers)``, after binding to them (first call) or checking that
        they are the arrays bound before."""
        named = named_parameters(layers)
        arrays = {key: layer.params[name] for key, layer, name in named}
        if self.parameters is None:
            self._check_state_fits(self.state, arrays)
            self.parameters = arrays
        else:
            self._check_same_arrays(arrays)
        return named

    def _check_same_arrays(self, arrays):
        """Raise ValueError unless ``arrays`` are exactly the bound ones (the same objects)."""
        who = type(self).__name__
        if arrays.keys() != self.parameters.keys():
            raise ValueError(
                f"{who}: step() got layers with parameters {sorted(arrays)}, but this optimizer is "
                f"bound to a network with {sorted(self.parameters)}; its state belongs to that "
                f"network's parameters: make a new optimizer for each network")
        for key, array in arrays.items():
            if array is not self.parameters[key]:
                raise ValueError(
                    f"{who}: parameter {key} is not the array this optimizer is bound to: these "
                    "are another network's layers (or a copy), or the parameter was replaced "
                    "instead of updated in place (write `param[...] = value`); make a new "
                    "optimizer for each network")

    def _check_state_fits(self, state, arrays):
        """Raise ValueError if ``state`` names a parameter ``arrays`` lacks, or has another shape."""
        for full_key, value in state.items():
            key = full_key.split("/", 1)[-1]
            if key not in arrays:
                raise ValueError(f"{type(self).__name__}: its state has {full_key!r}, for a parameter "
                                 f"these layers don't have (they have {sorted(arrays)}); the state "
                                 "was saved for another network")
            if np.shape(value) != arrays[key].shape:
                raise ValueError(f"{type(self).__name__}: its state {full_key!r} has shape "
                                 f"{np.shape(value)}, the parameter has {arrays[key].shape}; the "
                                 "state was saved for another network")

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
        """Restore ``state_dict()``'s output; checked against the bound parameters, if any yet."""
        state = {k: np.array(v) for k, v in state.items()}
        if self.parameters is not None:
            self._check_state_fits(state, self.parameters)
        self.state = state


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
        self.bind(layers)  # refuse other layers before counting a step
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
        t = int(state.pop("t", 0))
        super().load_state_dict(state)
        self.t = t


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}
