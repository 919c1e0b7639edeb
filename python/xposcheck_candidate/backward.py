"""The backward pass of one case (docs/protocol.md, "The backward pass").

Given the upstream gradients g_q = dL/dq_out and g_k = dL/dk_out, a candidate returns
dq = dL/dq and dk = dL/dk. It comes from the author's own
rotary_backward(g_q, g_k, q, k, case) when run() was given one, else, for
tensors="torch", from autograd through the forward function; a NumPy candidate without
one has no backward pass, and says so in candidate.json so that it is never asked.
"""

from .errors import ShapeError


class BackwardUnsupported(RuntimeError):
    """A backward case reached a candidate that has no backward pass."""


def supported(backward, tensors):
    return backward is not None or tensors == "torch"


def compute(fn, backward, q, k, g_q, g_k, case, tensors):
    """(dq, dk) for one case, from the candidate's own backward or from autograd."""
    if backward is not None:
        return backward(g_q, g_k, q, k, case)
    if tensors == "torch":
        return autograd(fn, q, k, g_q, g_k, case)
    raise BackwardUnsupported(
        "this candidate has no backward pass: give run() a rotary_backward function, "
        "or use tensors=\"torch\" to have it from autograd")


def autograd(fn, q, k, g_q, g_k, case):
    """Backpropagates g_q and g_k through fn(q, k, case), q and k as leaf tensors."""
    import torch

    q = q.detach().requires_grad_(True)
    k = k.detach().requires_grad_(True)
    with torch.enable_grad():
        result = fn(q, k, case)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise TypeError("the candidate function must return (q_out, k_out), got %s"
                            % type(result).__name__)
        outputs = [_connected(out, g, name)
                   for out, g, name in zip(result, (g_q, g_k), ("q_out", "k_out"))]
        # The upstream gradient in the output's own dtype, as a training step would
        # hand it over; an output of another dtype is the forward pass's finding.
        grads = [g.to(out.dtype) for out, g in zip(outputs, (g_q, g_k))]
        dq, dk = torch.autograd.grad(outputs, [q, k], grads, allow_unused=True)
    # A leaf that reaches no output has a zero gradient (which the harness judges).
    return (torch.zeros_like(q) if dq is None else dq,
            torch.zeros_like(k) if dk is None else dk)


def _connected(out, g, name):
    import torch

    if not isinstance(out, torch.Tensor):
        raise TypeError("autograd needs %s as a torch tensor, got %s (give run() a "
                        "rotary_backward instead)" % (name, type(out).__name__))
    if tuple(out.shape) != tuple(g.shape):
        raise ShapeError("%s shape %s does not match its upstream gradient's %s"
                         % (name, list(out.shape), list(g.shape)))
    if not out.requires_grad:
        raise RuntimeError("%s does not depend on q or k through autograd (computed outside "
                           "torch, or detached): give run() a rotary_backward" % name)
    return out
