"""Bad arguments raise ValueError naming the argument and the shapes."""

import pytest
import torch

from seqmamba.kernels import selective_scan


def _args(b=2, d=4, L=7, N=3):
    return dict(u=torch.randn(b, d, L), delta=torch.rand(b, d, L), A=-torch.rand(d, N),
                B=torch.randn(b, N, L), C=torch.randn(b, N, L))


@pytest.mark.parametrize(
    "change, pattern",
    [
        (dict(u=torch.randn(2, 4)), r"u must be \(batch, dim, L\), got shape \(2, 4\)"),
        (dict(delta=torch.rand(2, 4, 8)), r"delta must have u's shape \(2, 4, 7\), got \(2, 4, 8\)"),
        (dict(A=-torch.rand(5, 3)), r"A must be \(dim, N\) = \(4, N\), got \(5, 3\)"),
        (dict(B=torch.randn(2, 3, 6)), r"B must be \(batch, N, L\) = \(2, 3, 7\).* got \(2, 3, 6\)"),
        (dict(C=torch.randn(2, 3, 3, 7)), r"dim \(4\) must be divisible by C's groups \(3\)"),
        (dict(B=torch.randn(2, 2, 3, 7), C=torch.randn(2, 4, 3, 7)), r"same groups"),
        (dict(D=torch.randn(3)), r"D must be \(dim,\) = \(4,\), got \(3\)"),
        (dict(delta_bias=torch.randn(4, 1)), r"delta_bias must be \(dim,\)"),
        (dict(z=torch.randn(2, 4, 6)), r"z must have u's shape"),
        (dict(initial_state=torch.randn(2, 4, 2)), r"initial_state must be \(batch, dim, N\) = \(2, 4, 3\)"),
        (dict(u=torch.randint(0, 3, (2, 4, 7))), r"u must be a floating tensor"),
    ],
)
@pytest.mark.parametrize("backend", ["reference", "torch", "auto"])
def test_bad_arguments(change, pattern, backend):
    args = _args()
    args.update(change)
    with pytest.raises(ValueError, match=pattern):
        selective_scan(**args, backend=backend)


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        selective_scan(**_args(), backend="cuda")


def test_positive_A_is_allowed():
    args = _args()
    args["A"] = torch.rand(4, 3) * 0.1
    y_ref = selective_scan(**args, backend="reference")
    torch.testing.assert_close(selective_scan(**args, backend="torch"), y_ref)
