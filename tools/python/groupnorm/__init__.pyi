"""Type stubs of the groupnorm package."""
from typing import Any, Literal, Optional, Sequence, Tuple, Union

__version__: str

# Any C-contiguous buffer: numpy.ndarray, memoryview, CPU torch.Tensor (__dlpack__), or an object with the
# buffer protocol or __array_interface__.
Buffer = Any
Layout = Literal["nchw", "nhwc"]
Activation = Optional[Literal["none", "relu", "silu", "gelu"]]
DType = Literal["float32", "float16", "bfloat16"]

def group_norm(
    x: Buffer,
    num_groups: int,
    weight: Optional[Buffer] = None,
    bias: Optional[Buffer] = None,
    eps: float = 1e-5,
    *,
    layout: Layout = "nchw",
    activation: Activation = None,
    residual: Optional[Buffer] = None,
    out: Optional[Buffer] = None,
    return_sum: bool = False,
    return_stats: bool = False,
    threads: Optional[int] = None,
    dtype: Optional[DType] = None,
) -> Union[Buffer, Tuple[Buffer, ...]]:
    """GroupNorm of x (torch.nn.functional.group_norm's argument order); returns out, or
    (out[, sum][, mean, rstd])."""

def group_normalization(
    X: Any,
    gamma: Any,
    beta: Any,
    num_groups: int,
    epsilon: float = 1e-5,
    *,
    out: Optional[Any] = None,
    threads: Optional[int] = None,
) -> Any:
    """GroupNorm with the NumPy reference's signature; converts X, gamma and beta to float32."""

def group_norm_backward(
    x: Any,
    dy: Any,
    num_groups: int,
    gamma: Optional[Any] = None,
    beta: Optional[Any] = None,
    mean: Optional[Any] = None,
    rstd: Optional[Any] = None,
    epsilon: float = 1e-5,
    *,
    layout: Layout = "nchw",
    activation: Literal["none", "relu", "silu", "gelu"] = "none",
    dx: bool = True,
    dgamma: bool = True,
    dbeta: bool = True,
    threads: Optional[int] = None,
) -> Tuple[Optional[Any], Optional[Any], Optional[Any]]:
    """Gradients (dx, dgamma, dbeta) of a GroupNorm forward (docs/backward.md); one not asked for is None."""

def hardware_threads() -> int:
    """Number of threads threads=None uses, and the cap of every thread count."""

class Plan:
    """A GroupNorm problem validated once; calling it runs it on buffers of its shape and dtype."""

    def __init__(
        self,
        shape: Sequence[int],
        num_groups: int,
        eps: float = 1e-5,
        *,
        layout: Layout = "nchw",
        dtype: DType = "float32",
        activation: Activation = None,
        residual: bool = False,
    ) -> None: ...
    def __call__(
        self,
        x: Buffer,
        weight: Optional[Buffer] = None,
        bias: Optional[Buffer] = None,
        *,
        residual: Optional[Buffer] = None,
        out: Optional[Buffer] = None,
        return_sum: bool = False,
        return_stats: bool = False,
        threads: Optional[int] = None,
    ) -> Union[Buffer, Tuple[Buffer, ...]]: ...
    @property
    def shape(self) -> Tuple[int, ...]: ...
    @property
    def num_groups(self) -> int: ...
    @property
    def eps(self) -> float: ...
    @property
    def layout(self) -> Layout: ...
    @property
    def dtype(self) -> DType: ...
    @property
    def activation(self) -> Optional[str]: ...
    @property
    def residual(self) -> bool: ...
